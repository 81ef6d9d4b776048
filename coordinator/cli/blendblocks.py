"""A .blend's blocks and its DNA, read without Blender (blendscan.py asks which
blocks may point at files, blendformat.py reads one field of the rendered scene).

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
from dataclasses import dataclass
from typing import BinaryIO

_HEADER_V0 = re.compile(rb"BLENDER([-_])([vV])\d{3}")
_HEADER_V1 = re.compile(rb"BLENDER17-01v\d{4}")
_ARRAY = re.compile(r"\[(\d+)\]")


class Unreadable(Exception):
    """The layout is not one this reader knows; the tracer must look instead."""


@dataclass(frozen=True)
class Block:
    code: bytes
    old: int  # its address when saved: pointers in other blocks name it
    sdna: int
    at: int  # where its bytes start in the file
    length: int


@dataclass(frozen=True)
class Dna:
    pointer: int  # bytes
    structs: list[tuple[str, list[tuple[str, str, int]]]]  # name, (type, name, size)

    def offset(self, struct_name: str, path: list[str]) -> tuple[int, int]:
        """(offset, size) of a field path such as ["r", "im_format", "imtype"]."""
        at, size, current = 0, 0, struct_name
        for part in path:
            fields = self.fields(current)
            for ftype, fname, fsize in fields:
                if _base(fname) == part:
                    size, current = fsize, ftype
                    break
                at += fsize
            else:
                raise Unreadable(f"no field {part} in {current}")
        return at, size

    def fields(self, name: str) -> list[tuple[str, str, int]]:
        for sname, fields in self.structs:
            if sname == name:
                return fields
        raise Unreadable(f"no struct {name} in the DNA")


def read_blocks(f: BinaryIO) -> tuple[list[Block], Dna | None, str]:
    """Every block but DNA1 (code, address, struct, where), the DNA (None: the file
    has no DNA1 block), and the byte order."""
    head = f.read(17)
    v1 = _HEADER_V1.match(head)
    v0 = None if v1 else _HEADER_V0.match(head)
    if v1:
        order, pointer = "<", 8
        bhead, names = struct.Struct("<4siQqq"), ("code", "sdna", "old", "len", "nr")
    elif v0:
        order = "<" if v0[2] == b"v" else ">"
        pointer = 8 if v0[1] == b"-" else 4
        ptr = "Q" if pointer == 8 else "I"
        bhead, names = struct.Struct(f"{order}4si{ptr}ii"), ("code", "len", "old", "sdna", "nr")
    else:
        raise Unreadable("no .blend header (compressed, or not a .blend)")
    size = f.seek(0, 2)
    f.seek(17 if v1 else 12)
    blocks: list[Block] = []
    dna: Dna | None = None
    while True:
        raw = f.read(bhead.size)
        if len(raw) < bhead.size:
            raise Unreadable("the file ends without its ENDB block")
        v = dict(zip(names, bhead.unpack(raw), strict=True))
        if v["code"] == b"ENDB":
            break
        if v["len"] < 0 or f.tell() + v["len"] > size:
            raise Unreadable("a block runs past the end of the file")
        if v["code"] == b"DNA1":
            dna = _dna(f.read(v["len"]), order, pointer)
        else:
            blocks.append(Block(v["code"], v["old"], v["sdna"], f.tell(), v["len"]))
            f.seek(v["len"], 1)
    return blocks, dna, order


def _dna(data: bytes, order: str, pointer: int) -> Dna:
    """Every struct with its fields' types, names and sizes (SDNA sections)."""
    if data[:8] != b"SDNANAME":
        raise Unreadable("the DNA1 block does not start with SDNANAME")
    names, at = _strings(data, 8, order)
    if data[at : at + 4] != b"TYPE":
        raise Unreadable("no TYPE section in DNA1")
    types, at = _strings(data, at + 4, order)
    if data[at : at + 4] != b"TLEN":
        raise Unreadable("no TLEN section in DNA1")
    lengths = struct.unpack_from(f"{order}{len(types)}H", data, at + 4)
    at = (at + 4 + 2 * len(types) + 3) & ~3
    if data[at : at + 4] != b"STRC":
        raise Unreadable("no STRC section in DNA1")
    (count,) = struct.unpack_from(f"{order}i", data, at + 4)
    at += 8
    structs = []
    for _ in range(count):
        type_index, nfields = struct.unpack_from(f"{order}hh", data, at)
        pairs = struct.unpack_from(f"{order}{2 * nfields}h", data, at + 4)
        fields = []
        for ftype, fname in zip(pairs[::2], pairs[1::2], strict=True):
            name = names[fname]
            one = pointer if name.startswith(("*", "(*")) else lengths[ftype]
            for n in _ARRAY.findall(name):
                one *= int(n)
            fields.append((types[ftype], name, one))
        structs.append((types[type_index], fields))
        at += 4 + 4 * nfields
    return Dna(pointer, structs)


def _base(name: str) -> str:
    """A DNA field name without pointer stars, brackets or array sizes: "*curscene"
    -> "curscene", "name[66]" -> "name"."""
    return name.lstrip("*(").split("[", 1)[0].split(")", 1)[0]


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
