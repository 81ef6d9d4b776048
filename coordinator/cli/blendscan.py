"""Whether a .blend may use other files, read from its block headers without Blender.

`submit` traces a .blend's files in a headless Blender (tracing.py); a file
that holds no datablock able to point at a file (no image, library, sound,
font, cache, volume, movie clip, sequencer strip, point cache, cache-reading
modifier, geometry-node bake or File Output node) needs no tracing, and no Blender, to be sent
alone. Anything this cannot read (compressed files, an unknown layout) is
"cannot tell", which needs the tracer.

A .blend is a header, then blocks, each a BHead (code, length, address,
struct index, count) and its bytes; the DNA1 block names the struct of each
index. Layouts from Blender's `BLO_core_bhead.hh`: up to 4.x
`BLENDER` + pointer size (`_` 4, `-` 8) + endianness (`v` little, `V` big) +
version, BHead = code, int32 length, pointer, int32 struct, int32 count;
5.0+ `BLENDER17-01v0500`, BHead = code, int32 struct, uint64 address,
int64 length, int64 count (little endian, 8-byte pointers).
"""

from __future__ import annotations

import re
import struct
from pathlib import Path
from typing import BinaryIO

# ID block codes of datablocks that hold a path (the ID's two letters, zero-padded).
FILE_IDS = {
    b"LI\0\0": "library",
    b"IM\0\0": "image",
    b"SO\0\0": "sound",
    b"VF\0\0": "font",
    b"CF\0\0": "cache",
    b"VO\0\0": "volume",
    b"MC\0\0": "movie clip",
}
# Structs of data blocks that hold a path or read a folder (DNA names).
FILE_STRUCTS = {
    "Sequence": "sequencer strip",  # until 4.4
    "Strip": "sequencer strip",  # 4.4+
    "MeshCacheModifierData": "mesh cache",
    "OceanModifierData": "ocean cache",
    "FluidDomainSettings": "fluid cache",
    "PointCache": "simulation cache",
    "NodesModifierData": "geometry-node bake",
    # A compositor File Output node: not a file it reads, but the trace lists the files
    # it writes, so that they come home (core/fileoutputs.py); 3.x-5.0 keep its storage
    "NodeImageMultiFile": "File Output node",
}
_HEADER_V0 = re.compile(rb"BLENDER([-_])([vV])\d{3}")
_HEADER_V1 = re.compile(rb"BLENDER17-01v\d{4}")


class Unreadable(Exception):
    """The layout is not one this reader knows; the tracer must look instead."""


def file_users(path: Path) -> list[str] | None:
    """What in the .blend may point at other files ("image", "library", ...; empty:
    nothing), or None when this cannot tell (compressed, unknown layout)."""
    try:
        with path.open("rb") as f:
            blocks, dna = _blocks(f)
    except (OSError, Unreadable, struct.error):
        return None
    found = {FILE_IDS[code] for code, _ in blocks if code in FILE_IDS}
    data_structs = {index for code, index in blocks if code == b"DATA"}
    if data_structs and dna is None:
        return None
    for index in data_structs:
        name = dna[index] if dna is not None and index < len(dna) else None
        if name is None:
            return None
        if name in FILE_STRUCTS:
            found.add(FILE_STRUCTS[name])
    return sorted(found)


def _blocks(f: BinaryIO) -> tuple[list[tuple[bytes, int]], list[str] | None]:
    """(code, struct index) of every block, and the struct names of the DNA1 block."""
    head = f.read(17)
    v1 = _HEADER_V1.match(head)
    v0 = None if v1 else _HEADER_V0.match(head)
    if v1:
        bhead, order, fields = struct.Struct("<4siQqq"), "<", ("code", "sdna", "old", "len", "nr")
    elif v0:
        order = "<" if v0[2] == b"v" else ">"
        ptr = "Q" if v0[1] == b"-" else "I"
        bhead, fields = struct.Struct(f"{order}4si{ptr}ii"), ("code", "len", "old", "sdna", "nr")
        f.seek(12)
    else:
        raise Unreadable("no .blend header (compressed, or not a .blend)")
    size = f.seek(0, 2)
    f.seek(17 if v1 else 12)
    blocks: list[tuple[bytes, int]] = []
    dna: list[str] | None = None
    while True:
        raw = f.read(bhead.size)
        if len(raw) < bhead.size:
            raise Unreadable("the file ends without its ENDB block")
        values = dict(zip(fields, bhead.unpack(raw), strict=True))
        code, length = values["code"], values["len"]
        if code == b"ENDB":
            return blocks, dna
        if length < 0 or f.tell() + length > size:
            raise Unreadable("a block runs past the end of the file")
        if code == b"DNA1":
            dna = _struct_names(f.read(length), order)
        else:
            f.seek(length, 1)
            blocks.append((code, values["sdna"]))


def _struct_names(data: bytes, order: str) -> list[str]:
    """The struct name of each struct index: SDNA, NAME, TYPE, TLEN, STRC sections."""
    if data[:8] != b"SDNANAME":
        raise Unreadable("the DNA1 block does not start with SDNANAME")
    _names, at = _strings(data, 8, order)
    if data[at : at + 4] != b"TYPE":
        raise Unreadable("no TYPE section in DNA1")
    types, at = _strings(data, at + 4, order)
    at += 4 + 2 * len(types)  # "TLEN" and one short per type
    at = (at + 3) & ~3
    if data[at : at + 4] != b"STRC":
        raise Unreadable("no STRC section in DNA1")
    (count,) = struct.unpack_from(f"{order}i", data, at + 4)
    at += 8
    structs = []
    for _ in range(count):
        type_index, fields = struct.unpack_from(f"{order}hh", data, at)
        structs.append(types[type_index])
        at += 4 + 4 * fields
    return structs


def _strings(data: bytes, at: int, order: str) -> tuple[list[str], int]:
    """A count, then that many NUL-terminated strings; the end is aligned to 4."""
    (count,) = struct.unpack_from(f"{order}i", data, at)
    at += 4
    found = []
    for _ in range(count):
        end = data.index(b"\0", at)
        found.append(data[at:end].decode("ascii", "replace"))
        at = end + 1
    return found, (at + 3) & ~3
