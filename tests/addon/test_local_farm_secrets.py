"""The add-on's farm on this computer: its folder is private and its worker gets
the farm token by environment, never on a command line that `ps` shows."""

from __future__ import annotations

import os
import stat
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from flamenco_addon import local_farm
from tests.support.blendgen import DEBIAN_BLENDER

REPO = str(Path(__file__).resolve().parents[2])

pytestmark = [
    pytest.mark.slow,
    # The add-on's processes outlive the Popen that started them, on purpose.
    pytest.mark.filterwarnings("ignore::ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc"),
]


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    where = tmp_path / "local-farm"
    yield where
    local_farm.stop(where, local_farm.WORKER)
    local_farm.stop(where, local_farm.COORDINATOR)


def test_the_local_worker_gets_the_token_by_environment(
    root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FARM_TOKEN", "another-farms-token-from-the-shell")
    old = os.umask(0o022)
    try:
        state = local_farm.start_coordinator(
            root, python=sys.executable, pythonpath=[REPO], name="secrets", lan=False
        )
    finally:
        os.umask(old)
    assert stat.S_IMODE(root.stat().st_mode) == 0o700
    assert state.token and state.token != "another-farms-token-from-the-shell"
    pid = local_farm.start_worker(
        root,
        python=sys.executable,
        pythonpath=[REPO],
        url=state.url,
        token=state.token,
        name="local",
        blender=DEBIAN_BLENDER,
    )
    client = FarmClient(state.url, token=state.token)
    deadline = time.monotonic() + 30
    while not client.workers():  # it registered with the token from its environment
        assert time.monotonic() < deadline, (root / "worker.log").read_text(errors="replace")
        time.sleep(0.2)
    cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    assert b"worker_agent" in cmdline and state.token.encode() not in cmdline
