"""A worker without a token joins only the farms it saved credentials for: any
other farm found (an impostor) is skipped, and it gives up with a clear
message only after NO_TOKEN_WAIT seconds of finding nothing else."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from coordinator.client.browser import FoundCoordinator
from coordinator.client.http import WorkerCredentials
from worker_agent import agent as agent_module
from worker_agent.agent import Agent, AgentConfig
from worker_agent.credentials import FILE_NAME, save_credentials
from worker_agent.probe import BlenderInfo


def found(port: int) -> FoundCoordinator:
    url = f"https://127.0.0.1:{port}"
    return FoundCoordinator(
        "studio", url, "127.0.0.1", port, "1", None, f"studio-{port}", ("127.0.0.1",), tls=True
    )


def tokenless_agent(tmp_path: Path) -> Agent:
    info = BlenderInfo(version="3.4.1", version_tuple=(3, 4, 1), path="/bin/false", kind="binary")
    return Agent(
        AgentConfig(coordinator=None, token=None, name="w", blender=info, cache_dir=tmp_path)
    )


def test_only_farms_with_saved_credentials_are_joined(tmp_path: Path) -> None:
    real, impostor = found(8765), found(9999)
    save_credentials(tmp_path / FILE_NAME, real.url, WorkerCredentials("id", "lfw1_s", 60.0))
    clients = tokenless_agent(tmp_path)._with_saved_credentials([impostor, real])
    assert [c.url for c in clients] == [real.url]


def test_only_unknown_farms_for_the_whole_wait_ends_with_the_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_module, "NO_TOKEN_WAIT", 0.2)
    agent = tokenless_agent(tmp_path)
    assert agent._with_saved_credentials([found(9999)]) == []  # keeps browsing
    time.sleep(0.3)
    with pytest.raises(SystemExit, match="needs the farm token to register"):
        agent._with_saved_credentials([found(9999)])
