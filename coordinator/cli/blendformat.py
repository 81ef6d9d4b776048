"""What a scene writes (an image format or a movie), read from a .blend's blocks
without Blender, for a submit that runs no trace (--project, or a .blend that uses
no other file): a scene set to a movie is then submitted as a movie job too.

The rendered scene is FileGlobal.curscene (the GLOB block), as a background
Blender takes it, or the scene named by the job's `scene` setting; its format is
Scene.r.im_format.imtype, found at the offsets the file's own DNA gives (the
block layouts as blendscan.py reads them). Only the movie ids are named: an image
format is left to the scene on the worker. Anything this cannot read is None.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from coordinator.cli.blendscan import Unreadable

# ImageFormatData.imtype of the movie formats (DNA_scene_types.h, R_IMF_IMTYPE_*);
# H264, XVID and THEORA (31-33) are FFMPEG presets of old files.
MOVIE_IMTYPES = {
    15: "AVI_RAW",
    16: "AVI_JPEG",
    24: "FFMPEG",
    31: "FFMPEG",
    32: "FFMPEG",
    33: "FFMPEG",
}
IMAGE = "image"  # an image format: the worker keeps the scene's
_HEADER_V0 = re.compile(rb"BLENDER([-_])([vV])\d{3}")
_HEADER_V1 = re.compile(rb"BLENDER17-01v\d{4}")
_ARRAY = re.compile(r"\[(\d+)\]")


@dataclass(frozen=True)
class _Block:
    code: bytes
    old: int  # its address when saved: pointers in other blocks name it
    sdna: int
    at: int  # where its bytes start in the file
    length: int


@dataclass(frozen=True)
class _Dna:
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


def scene_format(path: Path, scene: str | None = None) -> str | None:
    """ "FFMPEG", "AVI_JPEG" or "AVI_RAW" when the rendered scene writes a movie,
    IMAGE when it writes images, None when this cannot tell."""
    try:
        with path.open("rb") as f:
            return _read(f, scene)
    except (OSError, Unreadable, struct.error, ValueError, IndexError, UnicodeError):
        return None


def _read(f: BinaryIO, scene: str | None) -> str | None:
    blocks, dna, order = _blocks(f)
    scenes = [b for b in blocks if b.code == b"SC\0\0"]
    if scene is not None:
        at, size = dna.offset("Scene", ["id", "name"])
        named = [b for b in scenes if _text(_field(f, b, at, size)) == "SC" + scene]
    else:
        (glob,) = [b for b in blocks if b.code == b"GLOB"]
        at, size = dna.offset("FileGlobal", ["curscene"])
        pointer = int.from_bytes(_field(f, glob, at, size), "little" if order == "<" else "big")
        named = [b for b in scenes if b.old == pointer]
    if len(named) != 1:
        return None
    at, size = dna.offset("Scene", ["r", "im_format", "imtype"])
    imtype = _field(f, named[0], at, size)[0]
    return MOVIE_IMTYPES.get(imtype, IMAGE)


def _field(f: BinaryIO, block: _Block, at: int, size: int) -> bytes:
    if at + size > block.length:
        raise Unreadable("a field past the end of its block")
    f.seek(block.at + at)
    return f.read(size)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8")


def _blocks(f: BinaryIO) -> tuple[list[_Block], _Dna, str]:
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
    blocks: list[_Block] = []
    dna: _Dna | None = None
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
            blocks.append(_Block(v["code"], v["old"], v["sdna"], f.tell(), v["len"]))
            f.seek(v["len"], 1)
    if dna is None:
        raise Unreadable("no DNA1 block")
    return blocks, dna, order


def _dna(data: bytes, order: str, pointer: int) -> _Dna:
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
    return _Dna(pointer, structs)


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
