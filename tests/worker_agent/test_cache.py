"""The worker's file cache against a real coordinator: each file downloaded once,
laid out with the project's relative paths, and never trusted once modified."""

from __future__ import annotations

import stat
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from tests.support.localfarm import LocalFarm
from worker_agent.cache import BlobCache, CacheError, safe_relpath


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path_factory.mktemp("farm")) as farm:
        farm.start_coordinator("--no-zeroconf")
        yield farm


def upload(client: FarmClient, tmp: Path, files: dict[str, bytes]) -> dict[str, str]:
    paths = {}
    for rel, data in files.items():
        path = tmp / "src" / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        paths[rel] = path
    hashes, _ = client.upload_project(paths)
    return hashes


def test_files_download_once_and_keep_their_layout(farm: LocalFarm, tmp_path: Path) -> None:
    client = farm.client()
    hashes = upload(client, tmp_path, {"shot.blend": b"blend", "tex/a.png": b"png"})
    cache = BlobCache(tmp_path / "cache")
    assert cache.materialize(client, hashes, tmp_path / "job1") == 2
    assert (tmp_path / "job1" / "tex" / "a.png").read_bytes() == b"png"
    assert cache.materialize(client, hashes, tmp_path / "job2") == 0  # all from the cache
    blob = cache.path(hashes["tex/a.png"])
    assert stat.S_IMODE(blob.stat().st_mode) == 0o444


def test_a_blob_written_through_a_project_link_is_fetched_again(
    farm: LocalFarm, tmp_path: Path
) -> None:
    client = farm.client()
    hashes = upload(client, tmp_path, {"cache.bphys": b"original"})
    cache = BlobCache(tmp_path / "cache")
    cache.materialize(client, hashes, tmp_path / "job1")
    linked = tmp_path / "job1" / "cache.bphys"
    linked.chmod(0o644)
    linked.write_bytes(b"re-baked!")  # a render that rewrote its input in place
    assert cache.materialize(client, hashes, tmp_path / "job2") == 1
    assert (tmp_path / "job2" / "cache.bphys").read_bytes() == b"original"


@pytest.mark.parametrize("bad", ["../x", "/etc/passwd", "a//b", "a/../../b", "C:/x", "a\\b", ""])
def test_project_paths_cannot_escape_the_job_folder(bad: str) -> None:
    with pytest.raises(CacheError):
        safe_relpath(bad)


def test_a_hash_with_a_trailing_newline_is_no_hash(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    with pytest.raises(CacheError, match="is not a sha256 hash"):
        cache.path("a" * 64 + "\n")


def test_fetches_of_one_file_from_threads_download_it_once_and_keep_no_lock(
    farm: LocalFarm, tmp_path: Path
) -> None:
    client = farm.client()
    hashes = upload(client, tmp_path, {"big.bin": bytes(range(256)) * 4096})
    cache = BlobCache(tmp_path / "cache")
    sha = hashes["big.bin"]
    results: list[tuple[Path, bool]] = []
    threads = [
        threading.Thread(target=lambda: results.append(cache.fetch(client, sha))) for _ in range(6)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert len(results) == 6
    assert sum(downloaded for _, downloaded in results) == 1  # the others waited for it
    assert cache.has(sha)
    assert cache._locks == {}  # a long-running worker keeps no lock per file it fetched
