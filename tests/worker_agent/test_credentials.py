"""The worker's saved secret: one entry per farm, private from the moment the file exists."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client.http import WorkerCredentials
from worker_agent.cache import BlobCache
from worker_agent.credentials import FILE_NAME, load_credentials, save_credentials

A = WorkerCredentials(worker_id="w-a", secret="secret-a", lease_seconds=60.0)
B = WorkerCredentials(worker_id="w-b", secret="secret-b", lease_seconds=30.0)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """A umask that narrows nothing: only the mode the code asks for protects the file."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


def test_each_farm_keeps_its_own_credentials(tmp_path: Path) -> None:
    path = tmp_path / "cache" / FILE_NAME
    assert load_credentials(path, "http://a:8765") is None
    save_credentials(path, "http://a:8765", A)
    save_credentials(path, "http://b:8765", B)
    assert load_credentials(path, "http://a:8765") == A
    assert load_credentials(path, "http://b:8765") == B


@pytest.mark.usefixtures("open_umask")
def test_the_file_is_private_even_over_a_leftover_readable_temp_file(tmp_path: Path) -> None:
    path = tmp_path / FILE_NAME
    leftover = tmp_path / (FILE_NAME + ".tmp")
    leftover.write_text("{}")
    leftover.chmod(0o644)
    save_credentials(path, "http://a:8765", A)
    assert path.stat().st_mode & 0o777 == 0o600
    assert not leftover.exists()


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"http://a:8765": {"secret": "x"}}'])
def test_an_unreadable_file_means_registering_again(tmp_path: Path, text: str) -> None:
    path = tmp_path / FILE_NAME
    path.write_text(text)
    assert load_credentials(path, "http://a:8765") is None
    save_credentials(path, "http://a:8765", A)  # and the new secret replaces it
    assert load_credentials(path, "http://a:8765") == A


@pytest.mark.usefixtures("open_umask")
def test_the_cache_folder_it_makes_is_private_from_the_start(tmp_path: Path) -> None:
    path = tmp_path / "new-cache" / FILE_NAME
    save_credentials(path, "http://a:8765", A)
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.usefixtures("open_umask")
def test_the_file_cache_is_private_from_the_start(tmp_path: Path) -> None:
    cache = BlobCache(tmp_path / "cache")
    assert cache.root.stat().st_mode & 0o777 == 0o700
