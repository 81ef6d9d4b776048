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

import struct
from pathlib import Path
from typing import BinaryIO

from coordinator.cli.blendblocks import Block, Unreadable, read_blocks

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


def scene_format(path: Path, scene: str | None = None) -> str | None:
    """ "FFMPEG", "AVI_JPEG" or "AVI_RAW" when the rendered scene writes a movie,
    IMAGE when it writes images, None when this cannot tell."""
    try:
        with path.open("rb") as f:
            return _read(f, scene)
    except (OSError, Unreadable, struct.error, ValueError, IndexError, UnicodeError):
        return None


def _read(f: BinaryIO, scene: str | None) -> str | None:
    blocks, dna, order = read_blocks(f)
    if dna is None:
        raise Unreadable("no DNA1 block")
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


def _field(f: BinaryIO, block: Block, at: int, size: int) -> bytes:
    if at + size > block.length:
        raise Unreadable("a field past the end of its block")
    f.seek(block.at + at)
    return f.read(size)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8")
