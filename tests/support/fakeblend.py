"""Stand-ins for .blend files in tests that never open them in Blender: a real
header and block layout (so `submit` sees a file that uses no other files and
needs no tracing), random bytes inside so each one is a different file."""

from __future__ import annotations

import os
import struct


def fake_blend_bytes(size: int = 512, *, header: bytes = b"BLENDER-v304") -> bytes:
    """A 3.4-style file (8-byte pointers, little endian): one REND block of `size`
    random bytes, then ENDB. Another `header` (zstd's magic, ...) makes it unreadable."""
    bhead = struct.Struct("<4siQii")
    body = bhead.pack(b"REND", size, 0, 0, 1) + os.urandom(size)
    return header + body + bhead.pack(b"ENDB", 0, 0, 0, 0)
