"""A small reader of MP4/QuickTime boxes: which tracks a movie has and how long they last.

Enough to check a movie's streams without a new system binary (ffprobe): the
movie header (`moov/mvhd`), and per track its handler (`mdia/hdlr`: "vide",
"soun") and media duration (`mdia/mdhd`). ISO/IEC 14496-12 and Apple's
QuickTime File Format share these boxes.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts", b"dinf"}


@dataclass(frozen=True)
class Track:
    handler: str  # "vide", "soun", ...
    seconds: float  # the track's media duration


@dataclass(frozen=True)
class Movie:
    brand: str  # ftyp's major brand: "isom", "qt  ", ...
    seconds: float  # the movie header's duration
    tracks: tuple[Track, ...]

    def track(self, handler: str) -> Track | None:
        return next((t for t in self.tracks if t.handler == handler), None)


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body start, body end) of each box between start and end."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:  # a 64-bit size follows
            (size,) = struct.unpack(">Q", data[pos + 8 : pos + 16])
            head = 16
        elif size == 0:  # to the end of the file
            size = end - pos
        if size < head or pos + size > end:
            raise ValueError(f"box {kind!r} at {pos} has a bad size {size}")
        out.append((kind, pos + head, pos + size))
        pos += size
    return out


def _duration(body: bytes) -> float:
    """mvhd/mdhd: version 0 has 32-bit times, version 1 64-bit; -> seconds."""
    if body[0] == 1:
        timescale, duration = struct.unpack(">IQ", body[20:32])
    else:
        timescale, duration = struct.unpack(">II", body[12:20])
    return duration / timescale if timescale else 0.0


def read_movie(path: str | Path) -> Movie:
    data = Path(path).read_bytes()
    top = _boxes(data, 0, len(data))
    brand = next((data[s : s + 4].decode("latin-1") for k, s, _ in top if k == b"ftyp"), "")
    moov = next(((s, e) for k, s, e in top if k == b"moov"), None)
    if moov is None:
        raise ValueError(f"{path}: no moov box: not a finished MP4/QuickTime movie")
    seconds = 0.0
    tracks = []
    for kind, start, end in _boxes(data, *moov):
        if kind == b"mvhd":
            seconds = _duration(data[start:end])
        elif kind == b"trak":
            tracks.append(_track(data, start, end))
    return Movie(brand=brand, seconds=seconds, tracks=tuple(tracks))


def _track(data: bytes, start: int, end: int) -> Track:
    handler, seconds = "", 0.0
    for kind, s, e in _boxes(data, start, end):
        if kind != b"mdia":
            continue
        for inner, s2, e2 in _boxes(data, s, e):
            if inner == b"hdlr":
                handler = data[s2 + 8 : s2 + 12].decode("latin-1")
            elif inner == b"mdhd":
                seconds = _duration(data[s2:e2])
    return Track(handler=handler, seconds=seconds)
