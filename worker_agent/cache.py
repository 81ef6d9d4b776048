"""The worker's local file cache: each project file downloaded once, by hash.

A job's files are laid out in a per-job work folder with the same relative
layout the artist had, as hard links into the cache (copies where the
filesystem can't link), so a second job using the same textures downloads
nothing.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from coordinator.client.http import FarmClient
from coordinator.core.datadirs import make_private_dir
from coordinator.core.hashing import sha256_file
from coordinator.core.names import UnsafeNameError, check_relative_path

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"[0-9a-f]{64}")  # used with fullmatch: no trailing newline


class CacheError(Exception):
    """A project file could not be fetched or placed; the message says which."""


def safe_relpath(relpath: str) -> Path:
    """A project path as a relative Path, refusing anything that could escape the
    folder on any OS (core.names: no "..", drive, ":", "\\", reserved or control
    names). A project's own hidden folders are allowed: they stay inside."""
    try:
        check_relative_path(relpath, what="project path", allow_hidden=True)
    except UnsafeNameError as ex:
        raise CacheError(str(ex)) from ex
    return Path(*relpath.split("/"))


class BlobCache:
    """Verified files by sha256 (thread-safe: a file fetched ahead of time, prefetch.py,
    and the same file fetched for a task wait for each other instead of both
    downloading it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.blobs = root / "files"
        make_private_dir(root)  # project files and the worker's secret: its user's only
        self.blobs.mkdir(parents=True, exist_ok=True)
        # sha -> (held while it is fetched, how many want it): dropped when nobody
        # does, so a long-running worker keeps no entry per file it ever fetched.
        self._locks: dict[str, tuple[threading.Lock, int]] = {}
        self._locks_lock = threading.Lock()

    def path(self, sha: str) -> Path:
        if not _SHA256.fullmatch(sha):
            raise CacheError(f"{sha!r} is not a sha256 hash")
        return self.blobs / sha[:2] / sha

    def has(self, sha: str) -> bool:
        """Whether the file is here, verified (a sealed blob)."""
        try:
            return self.path(sha).stat().st_mtime_ns == SEALED_MTIME
        except OSError:
            return False

    def free_bytes(self) -> int:
        """Free space on the cache's disk."""
        return shutil.disk_usage(self.blobs).free

    def fetch(
        self,
        client: FarmClient,
        sha: str,
        *,
        max_bytes: int | None = None,
        stop: Callable[[], bool] | None = None,
    ) -> tuple[Path, bool]:
        """The cached file for a hash, downloading it when missing. -> (path, downloaded)
        max_bytes and stop bound the download (FarmClient.download_file)."""
        target = self.path(sha)
        with self._lock_for(sha):
            return self._fetch(client, sha, target, max_bytes, stop)

    @contextmanager
    def _lock_for(self, sha: str) -> Iterator[None]:
        """One fetch of a file at a time (a prefetch and a task wait for each other)."""
        with self._locks_lock:
            lock, users = self._locks.get(sha, (threading.Lock(), 0))
            self._locks[sha] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._locks_lock:
                lock, users = self._locks[sha]
                if users == 1:
                    del self._locks[sha]
                else:
                    self._locks[sha] = (lock, users - 1)

    def _fetch(
        self,
        client: FarmClient,
        sha: str,
        target: Path,
        max_bytes: int | None,
        stop: Callable[[], bool] | None,
    ) -> tuple[Path, bool]:
        if target.is_file():
            if target.stat().st_mtime_ns == SEALED_MTIME:
                return target, False
            if sha256_file(target) == sha:  # unsealed (an older cache): check once, seal
                _seal(target)
                return target, False
            # Project files are hard links to these blobs: something wrote into one
            # (a re-baked cache, a script). Never render from a changed copy.
            log.warning("cached file %s was modified; downloading it again", sha[:12])
            target.unlink()
        # verified against sha, renamed into place
        client.download_file(sha, target, max_bytes=max_bytes, stop=stop)
        _seal(target)
        return target, True

    def materialize(
        self,
        client: FarmClient,
        files: Mapping[str, str],
        dest: Path,
        *,
        progress: Callable[[int, int], None] | None = None,
    ) -> int:
        """Lay out a job's files under dest; returns how many were downloaded."""
        downloaded = 0
        for done, (relpath, sha) in enumerate(sorted(files.items()), start=1):
            target = dest / safe_relpath(relpath)  # refused before anything is fetched
            source, fetched = self.fetch(client, sha)
            downloaded += fetched
            _check_no_links(target, dest)
            _place(source, target, sha)
            if progress is not None:
                progress(done, len(files))
        return downloaded


def _check_no_links(target: Path, root: Path) -> None:
    """No folder between root and target may be a symlink: files are written
    through them, so one planted there (by an earlier render, say) would carry
    this job's files out of its folder. A link at target itself is replaced."""
    folder = root
    for name in target.relative_to(root).parts[:-1]:
        folder = folder / name
        if folder.is_symlink():
            raise CacheError(f"refusing to write {target}: {folder} is a symbolic link")


# A verified blob is read-only with this mtime; a write into it (through any of
# its hard links) changes the mtime, which the next fetch() notices.
SEALED_MTIME = 0


def _seal(path: Path) -> None:
    path.chmod(0o444)
    os.utime(path, ns=(SEALED_MTIME, SEALED_MTIME))


def _place(source: Path, target: Path, sha: str) -> None:
    """Link (or copy) a cached blob to its project path, replacing a stale file."""
    if target.is_file() and not target.is_symlink():
        try:
            if os.path.samefile(source, target):
                return
        except OSError:
            pass
        if target.stat().st_size == source.stat().st_size and sha256_file(target) == sha:
            return
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copyfile(source, tmp)
    os.replace(tmp, target)
