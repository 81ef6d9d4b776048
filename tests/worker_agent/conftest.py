"""The coordinator the agent's in-process tests talk to (test_agent_loop, test_warm_*)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from coordinator.server.app import create_app
from tests.conftest import TOKEN, make_config
from tests.support.threaded_app import served_in_thread


@dataclass
class LiveFarm:
    url: str  # where the coordinator listens
    client: FarmClient  # with the farm token, as a person uses it
    root: Path  # a folder for the test's own files


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LiveFarm]:
    """The coordinator app on a real SQLite file, served from a thread on 127.0.0.1."""
    app = create_app(make_config(tmp_path / "farm", lease=10.0))
    with served_in_thread(app, "coordinator") as url:
        yield LiveFarm(url, FarmClient(url, token=TOKEN), tmp_path)
