"""Per-OS data folders, one rule for the coordinator and the add-on's local farm."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.core.datadirs import user_data_dir
from coordinator.server import serve as server
from flamenco_addon import local_farm


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))
    for name in ("LOCALAPPDATA", "XDG_DATA_HOME"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def test_each_os_has_its_usual_place(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert user_data_dir("linux") == home / ".local" / "share" / "blender-farm"
    assert user_data_dir("darwin") == home / "Library" / "Application Support" / "blender-farm"
    assert user_data_dir("win32") == home / "AppData" / "Local" / "blender-farm"
    monkeypatch.setenv("LOCALAPPDATA", str(home / "Local"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "xdg"))
    assert user_data_dir("win32") == home / "Local" / "blender-farm"
    assert user_data_dir("linux") == home / "xdg" / "blender-farm"
    monkeypatch.setenv("XDG_DATA_HOME", "")  # set but empty: the default, as the spec says
    assert user_data_dir("linux") == home / ".local" / "share" / "blender-farm"


def test_coordinator_and_local_farm_keep_separate_folders(home: Path) -> None:
    assert server.default_data_dir() == user_data_dir() / "coordinator"
    assert local_farm.default_data_dir() == user_data_dir() / "local-farm"
