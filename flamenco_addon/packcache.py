"""Which prepared .blend files the farm already has, by what they were made from. No `bpy`.

Preparing the farm's copy runs a separate Blender that saves the .blend
again, and a saved .blend differs byte for byte from one save to the next,
so its hash alone would make every submit upload the file again. What does
not change is its input: the .blend the rewrite opens, the libraries, and
the remap. This cache maps a hash of those to the hashes of the prepared
files; when the farm still holds them, the rewrite and the upload are skipped.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from collections.abc import Iterable
from pathlib import Path

from coordinator.core.hashing import sha256_file

from .packing import PackPlan

KEEP = 64  # entries kept: a few per file an artist submits


def key(plan: PackPlan, sources: Iterable[Path], extra: object = None) -> str:
    """What the prepared files are a function of (`extra`: more of it, as JSON)."""
    digest = hashlib.sha256()
    for path in sources:
        digest.update(blend_digest(path).encode())
    layout = [plan.blend_relpath, sorted(b.relpath for b in plan.blends), plan.remap, extra]
    digest.update(json.dumps(layout, sort_keys=True).encode())
    return digest.hexdigest()


# Blender 3.x-4.x files open with a 12-byte header ("BLENDER", "-" for 8-byte
# pointers or "_" for 4, "v" little or "V" big endian, 3 version digits), then
# the GLOB block: code, length (4 bytes), and the address the struct had in
# memory, a stack address that differs with the call depth of whoever wrote
# the file. It is zeroed before hashing; it means nothing to a reader.
_LEGACY_HEADER = 12


def blend_digest(path: Path) -> str:
    """sha256 of a .blend, blind to where Blender's stack was when it wrote it."""
    with path.open("rb") as f:
        head = f.read(64)
        if not (head[:7] == b"BLENDER" and head[7:8] in b"-_" and head[12:16] == b"GLOB"):
            return sha256_file(path)  # another format (5.0's header): as it is
        width = 8 if head[7:8] == b"-" else 4
        start = _LEGACY_HEADER + 8  # the old address follows code and length
        digest = hashlib.sha256(head[:start] + bytes(width) + head[start + width :])
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class PackCache:
    """A small JSON file in the add-on's user folder: key -> {relpath: sha256}."""

    def __init__(self, path: Path | None) -> None:
        self.path = path  # None: no cache (every submit prepares afresh)

    def get(self, k: str) -> dict[str, str] | None:
        found = self._load().get(k)
        return dict(found) if isinstance(found, dict) else None

    def put(self, k: str, hashes: dict[str, str]) -> None:
        if self.path is None:
            return
        entries = {n: v for n, v in self._load().items() if n != k}
        entries[k] = hashes
        kept = dict(list(entries.items())[-KEEP:])
        with contextlib.suppress(OSError):  # a cache that can't be written just misses
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(kept), encoding="utf-8")
            os.replace(tmp, self.path)

    def _load(self) -> dict[str, dict[str, str]]:
        if self.path is None:
            return {}
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}
