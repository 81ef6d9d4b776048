"""Content-addressed blobs, per-job outputs, and delivery into output folders.

Every name that comes from a client is checked here before it touches the
filesystem: hashes must be 64 hex digits, output names a single plain path
component, project paths relative without `..`.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import re
import secrets
import shutil
import stat
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from coordinator.core.datadirs import make_private_dir
from coordinator.core.hashing import sha256_file
from coordinator.core.names import name_problem
from coordinator.core.outputs import local_output_folder
from coordinator.server.errors import BadRequest, InsufficientStorage, TooLarge

log = logging.getLogger(__name__)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_BAD_NAME_CHARS = re.compile(r'[\x00-\x1f/\\:*?"<>|]')
MAX_NAME = 255
MAX_RELPATH = 4096
CHUNK = 1 << 20


def check_sha256(value: str) -> str:
    if not isinstance(value, str) or not _SHA256.match(value):
        raise BadRequest(f"{value!r} is not a sha256 hash (64 lowercase hex digits)")
    return value


def check_output_name(name: str) -> str:
    """A frame's file name: one plain component on every OS (core.names), and none
    of the characters Windows refuses in names."""
    problem = name_problem(name)
    if problem is None and _BAD_NAME_CHARS.search(name):
        problem = 'it contains one of \\/:*?"<>| or a control character'
    if problem is not None:
        raise BadRequest(
            f"{name!r} is not an acceptable output file name: {problem}. Send one name of at"
            f' most {MAX_NAME} bytes, no folders, no control characters or any of \\/:*?"<>|'
        )
    return name


def check_relpath(path: str) -> str:
    """A file's place in a packed project: relative, forward slashes, no `..`."""
    problem = None
    if not isinstance(path, str) or not path:
        problem = "is empty"
    elif len(path) > MAX_RELPATH or "\x00" in path or "\\" in path:
        problem = "is too long or has a NUL byte or a backslash"
    elif path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        problem = "is absolute"
    else:
        parts = path.split("/")
        if any(p in ("", ".", "..") for p in parts):
            problem = "has an empty, '.' or '..' component"
        elif any(len(p.encode()) > MAX_NAME for p in parts):
            problem = f"has a component longer than {MAX_NAME} bytes"
    if problem:
        raise BadRequest(f"project path {path!r} {problem}; use paths relative to the project root")
    return path


@dataclass(frozen=True)
class Delivery:
    path: str | None  # where the file is now, None when it could not be written
    note: str  # what happened, for the job's log and the dashboard


class FileStore:
    """Files on the coordinator's disk, under its data dir."""

    def __init__(self, root: Path, *, max_upload: int) -> None:
        self.root = root
        self.blobs = root / "files"
        self.jobs = root / "jobs"
        self.tmp = root / "tmp"
        self.max_upload = max_upload
        # Project files and frames are the artists' work: private from the start.
        for folder in (root, self.blobs, self.jobs, self.tmp):
            make_private_dir(folder)
        # Uploads cut short by a crash of the coordinator (each is retried whole).
        for leftover in self.tmp.glob("upload-*"):
            leftover.unlink(missing_ok=True)

    # --- blobs --------------------------------------------------------
    def blob_path(self, sha: str) -> Path:
        check_sha256(sha)
        return self.blobs / sha[:2] / sha

    def has_blob(self, sha: str) -> bool:
        return self.blob_path(sha).is_file()

    async def put_blob(self, sha: str, chunks: AsyncIterator[bytes]) -> int:
        """Store an upload if its content hashes to `sha`; returns its size."""
        target = self.blob_path(sha)
        if target.is_file():
            async for _ in chunks:  # drain so the client sees a clean response
                pass
            return target.stat().st_size
        tmp, actual, size = await self._receive(chunks)
        if actual != sha:
            tmp.unlink(missing_ok=True)
            raise BadRequest(f"upload does not match its hash: expected {sha}, got {actual}")
        make_private_dir(target.parent)
        os.replace(tmp, target)
        return size

    # --- job outputs --------------------------------------------------
    def output_path(self, job_id: int, name: str) -> Path:
        return self.jobs / str(job_id) / "outputs" / check_output_name(name)

    def log_path(self, job_id: int, task_id: int) -> Path:
        return self.jobs / str(job_id) / "logs" / f"task-{task_id}.log"

    async def receive_output(
        self, name: str, chunks: AsyncIterator[bytes], *, sha: str | None
    ) -> tuple[Path, str, int]:
        """Receive a rendered file into tmp/ and check its hash; -> (tmp, sha256, size).

        Split from commit_output() so the farm can check the worker still holds
        its task after the (long) upload and before the file replaces anything.
        """
        tmp, actual, size = await self._receive(chunks)
        if sha is not None and actual != sha:
            tmp.unlink(missing_ok=True)
            raise BadRequest(
                f"output {name!r} does not match its hash: expected {sha}, got {actual}"
            )
        return tmp, actual, size

    def commit_output(self, tmp: Path, job_id: int, name: str) -> None:
        """Move a received file into the job's outputs, replacing one of the same name."""
        target = self.output_path(job_id, name)
        try:
            make_private_dir(target.parent.parent)
            make_private_dir(target.parent)
            os.replace(tmp, target)
        finally:
            tmp.unlink(missing_ok=True)

    def remove_job(self, job_id: int) -> None:
        shutil.rmtree(self.jobs / str(job_id), ignore_errors=True)

    async def _receive(self, chunks: AsyncIterator[bytes]) -> tuple[Path, str, int]:
        digest, size = hashlib.sha256(), 0
        fd, name = tempfile.mkstemp(dir=self.tmp, prefix="upload-")
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                async for chunk in chunks:
                    size += len(chunk)
                    if size > self.max_upload:
                        raise TooLarge(
                            f"upload is larger than the limit of {self.max_upload} bytes"
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as ex:
            tmp.unlink(missing_ok=True)
            if ex.errno == errno.ENOSPC:
                raise InsufficientStorage("the coordinator's disk is full") from ex
            raise
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        return tmp, digest.hexdigest(), size


def output_folder(pattern: str) -> Path | None:
    """The folder a job's render.filepath names on this machine, or None when it
    names none here (`core.outputs.local_output_folder`, the rule every receiver shares)."""
    folder = local_output_folder(pattern)
    return Path(folder) if folder is not None else None


# The temporary name deliver() copies into: ".<name>.<mkstemp's 8 characters>.part",
# and the name _replace_own moves a file aside to for a moment.
_PARTIAL = re.compile(r"\.(?P<name>.+)\.[a-z0-9_]{8}\.part")
_ASIDE = re.compile(r"\.(?P<name>.+)\.[0-9a-f]{8}\.aside")


def remove_partial_deliveries(folder: Path, names: set[str], *, before: float) -> list[Path]:
    """Delete the half-copied files a killed coordinator left in an output folder:
    only deliver()'s own temporary names, only for outputs in `names`, only those
    last written before `before` (a copy running now keeps writing its own).
    A file it had moved aside (_replace_own) goes back to its name when that is
    free, and is dropped when the same bytes are there; else it stays, said."""
    removed = []
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return []
    for entry in entries:
        aside = _ASIDE.fullmatch(entry.name)
        if aside is not None and aside["name"] in names:
            _restore_aside(Path(entry.path), folder / aside["name"], before=before)
            continue
        match = _PARTIAL.fullmatch(entry.name)
        if match is None or match["name"] not in names:
            continue
        with contextlib.suppress(OSError):
            stat = entry.stat(follow_symlinks=False)
            if entry.is_file(follow_symlinks=False) and stat.st_mtime < before:
                os.unlink(entry.path)
                removed.append(Path(entry.path))
    return removed


def _restore_aside(aside: Path, dest: Path, *, before: float) -> None:
    try:
        if os.lstat(aside).st_ctime >= before:  # moved aside by this process: not left over
            return
        if _link_exclusive(aside, dest) or _same_bytes(aside, dest):
            aside.unlink()
            return
    except OSError as ex:
        log.warning("%s: could not put %s back (%s)", dest, aside, ex)
        return
    log.warning("%s: a file moved aside while a frame was delivered is kept at %s", dest, aside)


def deliver(
    source: Path, sha: str, dest: Path, *, overwrite: bool, replaceable: str | None = None
) -> Delivery:
    """Copy a verified output to where the artist expects it, atomically.

    Never replaces a different file without saying so, and never at all when
    the job asked not to overwrite (Blender's Overwrite option off), except
    the file the same job delivered there before (`replaceable`, its sha256):
    a progressive frame replaces its own earlier, noisier version. With
    overwrite off the finished copy is linked into place, which fails if
    anything at all is there by then (a file, a dangling link, a FIFO).
    The frame gets the mode a local render gives it: 0666 less the umask.
    """
    try:
        # Reading what is there can fail too (a folder we may not enter, an
        # unreadable file): that is a delivery problem, retried, never a 500.
        seen = _identity(dest)  # which file the hash below is of
        current = _regular_file_sha(dest)
        if current == sha:
            return Delivery(str(dest), "already there")
        ours = current is not None and current == replaceable and _identity(dest) == seen
        if not overwrite and not ours and os.path.lexists(dest):
            return Delivery(None, f"kept what is already at {dest} (overwrite is off)")
        replaced = os.path.lexists(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = _copy_beside(source, sha, dest)
        try:
            if overwrite:
                os.replace(tmp, dest)
            else:
                placed = _replace_own(tmp, dest, seen) if ours else _link_exclusive(tmp, dest)
                if not placed:
                    return Delivery(None, f"kept what is already at {dest} (overwrite is off)")
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
    except OSError as ex:
        # Farm.deliver_output logs it once; the sweep retries every second.
        log.debug("delivery of %s to %s failed: %s", source.name, dest, ex)
        return Delivery(None, f"could not write {dest}: {ex.strerror or ex}")
    if ours:
        return Delivery(str(dest), "updated (replaced this job's earlier version)")
    return Delivery(str(dest), "replaced an older file" if replaced else "delivered")


def _regular_file_sha(path: Path) -> str | None:
    """The sha256 of a regular file at `path` (not through a link); None for
    nothing, or anything else (a link, a FIFO, a folder), which is never read."""
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return None
    return sha256_file(path) if stat.S_ISREG(mode) else None


def _copy_beside(source: Path, sha: str, dest: Path) -> Path:
    """A checked copy of `source` next to `dest`, named as remove_partial_deliveries
    knows; made with mode 0666 so the umask gives it a local render's mode."""
    while True:
        tmp = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.part"
        try:
            fd = create_new(tmp)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as out, source.open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
        if sha256_file(tmp) != sha:
            raise OSError(errno.EIO, "copy does not match the uploaded checksum")
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise
    return tmp


def _replace_own(tmp: Path, dest: Path, own: tuple[int, ...] | None) -> bool:
    """With overwrite off, put `tmp` at `dest` only in place of the job's own
    earlier version (the file whose identity, `_identity`, was `own` when its
    hash was checked); False, replacing nothing, otherwise.

    That file is moved aside in one step and recognised there by its identity
    (no second hash: `dest` is empty for microseconds, not for a big EXR's
    read), so a file someone put at `dest` after the check is never replaced:
    it is moved back. Whatever fails on the way, what was moved aside goes back
    unless it was the job's own; a coordinator killed in between leaves it
    under the ".aside" name, which remove_partial_deliveries puts back.
    """
    aside = _aside_name(dest)
    try:
        os.rename(dest, aside)
    except FileNotFoundError:  # gone meanwhile: nothing to replace
        return _link_exclusive(tmp, dest)
    placed = False
    try:
        if own is not None and _identity(aside) == own:
            placed = _link_exclusive(tmp, dest)
    finally:
        _settle_aside(aside, dest, own, placed=placed)
    return placed


def _settle_aside(aside: Path, dest: Path, own: tuple[int, ...] | None, *, placed: bool) -> None:
    """After _replace_own: unless the new version is in place, what was moved aside
    goes back where it was (the job's earlier version too, if the delivery
    failed); then the aside name goes, unless it holds someone's file that
    could not go back (something else is at `dest` now): that is said."""
    try:
        ours = own is not None and _identity(aside) == own
        restored = not placed and _link_exclusive(aside, dest)
        if placed or restored or ours:
            aside.unlink()
            return
    except OSError as ex:
        log.warning("%s: could not tidy %s after a delivery (%s); it is kept", dest, aside, ex)
        return
    log.warning(
        "%s was replaced twice while a frame was delivered; the first is at %s", dest, aside
    )


def _same_bytes(one: Path, other: Path) -> bool:
    sha = _regular_file_sha(one)
    return sha is not None and sha == _regular_file_sha(other)


def _identity(path: Path) -> tuple[int, ...] | None:
    """Which file is at `path` (not through a link), and unchanged: device, inode,
    size and modification time; None when nothing is there."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return None
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _aside_name(dest: Path) -> Path:
    """A new name beside `dest` for a moment; not a ".part" name (a partial copy,
    which a restart deletes)."""
    while True:
        aside = dest.parent / f".{dest.name}.{secrets.token_hex(4)}.aside"
        if not os.path.lexists(aside):
            return aside


def _link_exclusive(tmp: Path, dest: Path) -> bool:
    """Put `tmp` at `dest` only if nothing is there; False if something is.

    A hard link is created or not in one step, so nothing that appears between
    a check and the move can be replaced. Where links are not supported (FAT,
    some network shares) a rename that refuses existing names is not available
    either, so the file is copied into a new name opened with O_EXCL.
    """
    try:
        os.link(tmp, dest, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as ex:
        if ex.errno not in _NO_LINKS:
            raise
    try:
        fd = create_new(dest)
    except FileExistsError:
        return False
    try:
        with os.fdopen(fd, "wb") as out, tmp.open("rb") as src:
            shutil.copyfileobj(src, out, CHUNK)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        dest.unlink(missing_ok=True)  # ours: made by the O_EXCL open above
        raise
    return True


# What os.link raises where a file system has no hard links.
_NO_LINKS = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK})


def create_new(path: Path) -> int:
    """Open a new file for writing, failing if anything is at `path` (even a
    dangling link); mode 0666 less the umask, as a local render's frames get."""
    return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _O_BINARY, 0o666)


_O_BINARY = getattr(os, "O_BINARY", 0)  # Windows: no newline translation
