"""The extension zip's wheels unpacked for a legacy add-on, and the farm commands' lines."""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import pytest

from flamenco_addon import farm_cli, wheels


def wheel(path: Path, files: dict[str, str]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    return path


def test_wheels_are_unpacked_once_and_imported_from(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", list(sys.path))
    wheel(tmp_path / "wheels" / "tiny-1.0-py3-none-any.whl", {"tiny_mod_xyz.py": "X = 1\n"})
    site = wheels.ensure(tmp_path)
    assert site == tmp_path / wheels.SITE and str(site) in sys.path
    assert (site / "tiny_mod_xyz.py").read_text() == "X = 1\n"
    (site / "tiny_mod_xyz.py").write_text("X = 2\n")
    wheels.ensure(tmp_path)  # known wheels are not unpacked again
    assert (site / "tiny_mod_xyz.py").read_text() == "X = 2\n"
    assert wheels.ensure(tmp_path / "nothing") is None


def test_a_wheel_never_writes_outside_its_folder(tmp_path: Path) -> None:
    evil = wheel(tmp_path / "wheels" / "evil-1.0-py3-none-any.whl", {"../../escaped.py": "x"})
    with pytest.raises(wheels.WheelError, match="outside its folder"):
        wheels.unpack(evil, tmp_path / "site")
    assert not (tmp_path.parent / "escaped.py").exists()


def test_the_worker_renders_with_this_blender_unless_told_another() -> None:
    argv = ["--coordinator", "http://boss:8765", "--token", "t"]
    command = farm_cli.worker_command(argv, python="/b/python", blender="/b/blender")
    assert command == ["/b/python", "-m", "worker_agent", *argv, "--blender", "/b/blender"]
    own = farm_cli.worker_command(["--blender=/other"], python="/b/python", blender="/b/blender")
    assert own == ["/b/python", "-m", "worker_agent", "--blender=/other"]
    module = farm_cli.worker_command([], python="/venv/python", blender="")  # the bpy module
    assert module[-2:] == ["--bpy-python", "/venv/python"]
    assert farm_cli.coordinator_command(["--port", "9000"], python="/b/python") == [
        "/b/python",
        "-m",
        "coordinator",
        "serve",
        "--port",
        "9000",
    ]
    assert farm_cli.command_for("farm_nothing", [], python="p", blender="b") is None
