"""Delivery into the artist's folder (filestore.deliver): overwrite off never
replaces anything that is there, overwrite on replaces atomically, and frames
get the mode a local render gives them. The farm's own folders are private."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.core.datadirs import make_private_dir
from coordinator.server import filestore
from coordinator.server.filestore import FileStore, deliver

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX modes and FIFOs")


@pytest.fixture
def frame(tmp_path: Path) -> tuple[Path, str]:
    source = tmp_path / "stored.png"
    source.write_bytes(b"the farm's pixels")
    return source, hashlib.sha256(source.read_bytes()).hexdigest()


@pytest.fixture
def umask() -> Iterator[None]:
    old = os.umask(0o022)
    yield
    os.umask(old)


def test_overwrite_off_keeps_a_dangling_link(tmp_path: Path, frame: tuple[Path, str]) -> None:
    dest = tmp_path / "out" / "f_0001.png"
    dest.parent.mkdir()
    dest.symlink_to(tmp_path / "nowhere" / "startup.py")
    result = deliver(*frame, dest, overwrite=False)
    assert result.path is None and "kept what is already at" in result.note
    assert os.readlink(dest) == str(tmp_path / "nowhere" / "startup.py")
    assert not (tmp_path / "nowhere").exists()  # nothing written through the link
    assert sorted(os.listdir(dest.parent)) == ["f_0001.png"]  # no temporary file left


def test_overwrite_off_never_opens_a_fifo(tmp_path: Path, frame: tuple[Path, str]) -> None:
    dest = tmp_path / "f_0001.png"
    os.mkfifo(dest)
    result = deliver(*frame, dest, overwrite=False)  # opening it would block forever
    assert result.path is None and "kept" in result.note
    assert stat.S_ISFIFO(os.lstat(dest).st_mode)


def test_overwrite_off_keeps_a_file_that_appears_during_the_copy(
    tmp_path: Path, frame: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No check-then-rename: a file made between the check and the move stays."""
    dest = tmp_path / "f_0001.png"
    real = filestore._copy_beside

    def copy_then_race(source: Path, sha: str, to: Path) -> Path:
        tmp = real(source, sha, to)
        to.write_bytes(b"the artist saved this meanwhile")
        return tmp

    monkeypatch.setattr(filestore, "_copy_beside", copy_then_race)
    result = deliver(*frame, dest, overwrite=False)
    assert result.path is None and "kept" in result.note
    assert dest.read_bytes() == b"the artist saved this meanwhile"
    assert sorted(os.listdir(tmp_path)) == ["f_0001.png", "stored.png"]  # no temporary left


def test_overwrite_off_writes_where_nothing_is(tmp_path: Path, frame: tuple[Path, str]) -> None:
    dest = tmp_path / "f_0001.png"
    result = deliver(*frame, dest, overwrite=False)
    assert (result.path, result.note) == (str(dest), "delivered")
    assert dest.read_bytes() == b"the farm's pixels" and os.stat(dest).st_nlink == 1


def test_overwrite_off_refines_only_the_jobs_own_file(
    tmp_path: Path, frame: tuple[Path, str]
) -> None:
    dest = tmp_path / "f_0001.png"
    dest.write_bytes(b"noisy")
    earlier = hashlib.sha256(b"noisy").hexdigest()
    result = deliver(*frame, dest, overwrite=False, replaceable=earlier)
    assert result.note == "updated (replaced this job's earlier version)"
    assert dest.read_bytes() == b"the farm's pixels"


def test_overwrite_off_keeps_a_file_put_over_the_jobs_own_during_the_copy(
    tmp_path: Path, frame: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The job's earlier version may be refined, but not a file the artist put in
    its place after the check: it is moved aside, found not ours, moved back."""
    dest = tmp_path / "f_0001.png"
    dest.write_bytes(b"noisy")
    earlier = hashlib.sha256(b"noisy").hexdigest()
    real = filestore._copy_beside

    def copy_then_race(source: Path, sha: str, to: Path) -> Path:
        tmp = real(source, sha, to)
        to.unlink()
        to.write_bytes(b"the artist saved this meanwhile")
        return tmp

    monkeypatch.setattr(filestore, "_copy_beside", copy_then_race)
    result = deliver(*frame, dest, overwrite=False, replaceable=earlier)
    assert result.path is None and "kept" in result.note
    assert dest.read_bytes() == b"the artist saved this meanwhile"
    assert sorted(os.listdir(tmp_path)) == ["f_0001.png", "stored.png"]  # nothing aside left
    monkeypatch.setattr(filestore, "_copy_beside", real)
    # and with the job's own version still there, it is refined, nothing left aside
    dest.write_bytes(b"noisy")
    result = deliver(*frame, dest, overwrite=False, replaceable=earlier)
    assert result.note.startswith("updated") and dest.read_bytes() == b"the farm's pixels"
    assert sorted(os.listdir(tmp_path)) == ["f_0001.png", "stored.png"]


def test_overwrite_off_a_failed_refinement_puts_the_earlier_version_back(
    tmp_path: Path, frame: tuple[Path, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    dest = tmp_path / "f_0001.png"
    dest.write_bytes(b"noisy")
    earlier = hashlib.sha256(b"noisy").hexdigest()
    real = filestore._link_exclusive

    def disk_fails_for_the_new_copy(tmp: Path, to: Path) -> bool:
        if tmp.name.endswith(".part"):
            raise OSError(errno.EIO, "Input/output error")
        return real(tmp, to)

    monkeypatch.setattr(filestore, "_link_exclusive", disk_fails_for_the_new_copy)
    result = deliver(*frame, dest, overwrite=False, replaceable=earlier)
    assert result.path is None and result.note.startswith("could not write"), result
    assert dest.read_bytes() == b"noisy"  # retried later; meanwhile the earlier version
    assert sorted(os.listdir(tmp_path)) == ["f_0001.png", "stored.png"]


@pytest.mark.parametrize(
    ("there", "kept_aside"),
    [(None, False), (b"earlier", False), (b"the artist's own", True)],
    ids=["name-free", "same-bytes-there", "another-file-there"],
)
def test_a_file_left_aside_by_a_killed_coordinator_goes_back(
    tmp_path: Path, there: bytes | None, kept_aside: bool
) -> None:
    aside = tmp_path / ".f_0001.png.0123abcd.aside"
    aside.write_bytes(b"earlier")
    dest = tmp_path / "f_0001.png"
    if there is not None:
        dest.write_bytes(there)
    filestore.remove_partial_deliveries(tmp_path, {"f_0001.png"}, before=time.time() + 60)
    assert dest.read_bytes() == (there or b"earlier")  # never replaced
    assert aside.exists() == kept_aside
    # one moved aside by the running coordinator (after its start) is left alone
    if not kept_aside:
        aside.write_bytes(b"in use")
        filestore.remove_partial_deliveries(tmp_path, {"f_0001.png"}, before=time.time() - 60)
        assert aside.exists()


def test_overwrite_on_replaces_a_link_not_its_target(
    tmp_path: Path, frame: tuple[Path, str]
) -> None:
    target = tmp_path / "elsewhere.txt"
    target.write_text("not the farm's")
    dest = tmp_path / "f_0001.png"
    dest.symlink_to(target)
    result = deliver(*frame, dest, overwrite=True)
    assert result.note == "replaced an older file"
    assert not dest.is_symlink() and dest.read_bytes() == b"the farm's pixels"
    assert target.read_text() == "not the farm's"


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_a_delivered_frame_has_the_mode_a_local_render_gives_it(
    tmp_path: Path, frame: tuple[Path, str], mask: int, mode: int
) -> None:
    old = os.umask(mask)
    try:
        for overwrite in (False, True):
            dest = tmp_path / f"f_{overwrite}.png"
            assert deliver(*frame, dest, overwrite=overwrite).path == str(dest)
            assert stat.S_IMODE(os.stat(dest).st_mode) == mode
    finally:
        os.umask(old)


def test_the_file_store_is_private_from_the_start(tmp_path: Path, umask: None) -> None:
    store = FileStore(tmp_path / "data", max_upload=1 << 20)
    for folder in (store.root, store.blobs, store.jobs, store.tmp):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder


def test_a_private_folder_is_made_0700_and_an_existing_one_left_alone(
    tmp_path: Path, umask: None
) -> None:
    made = make_private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE(os.stat(made).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(tmp_path / "a").st_mode) == 0o755  # a parent: as mkdir -p
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)
    make_private_dir(shared)
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o755
