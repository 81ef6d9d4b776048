"""Which Blender saved a .blend, from its header: both layouts (up to 4.x and
5.0+), gzip-compressed files of old Blenders, and the ones we cannot read."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest

from coordinator.core.blendfile import ZSTD_MAGIC, read_blend_version, version_from_header


@pytest.mark.parametrize(
    ("header", "version"),
    [
        (b"BLENDER-v304", "3.4"),  # Debian's 3.4, 64-bit little endian
        (b"BLENDER_V279", "2.79"),  # 32-bit big endian, 2.79
        (b"BLENDER-v402", "4.2"),
        (b"BLENDER17-01v0500", "5.0"),  # 5.0's long header
        (b"BLENDER17-01v0405", "4.5"),
        (b"BLENDER", None),
        (b"PK\x03\x04 not a blend", None),
    ],
)
def test_version_from_header(header: bytes, version: str | None) -> None:
    assert version_from_header(header + b"REND\x00\x00") == version


def test_read_blend_version_handles_compressed_files(tmp_path: Path) -> None:
    gz = tmp_path / "old.blend"
    gz.write_bytes(gzip.compress(b"BLENDER-v279REND" + bytes(100)))
    assert read_blend_version(gz) == ("2.79", "")
    zst = tmp_path / "new.blend"
    zst.write_bytes(ZSTD_MAGIC + os.urandom(64))
    version, why = read_blend_version(zst)
    assert version is None and "zstd" in why
    junk = tmp_path / "junk.blend"
    junk.write_bytes(b"\x1f\x8b broken gzip")
    assert read_blend_version(junk)[0] is None


def test_read_blend_version_says_why_it_could_not(tmp_path: Path) -> None:
    text = tmp_path / "notes.blend"
    text.write_bytes(b"just some text")
    assert read_blend_version(text) == (None, "it does not start with a .blend header")
    version, why = read_blend_version(tmp_path / "missing.blend")
    assert version is None and why.startswith("cannot read its header")
