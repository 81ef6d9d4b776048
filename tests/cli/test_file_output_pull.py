"""`pull` brings File Output files where the submission from this machine pointed
them (the record `submit` keeps), never where a reply says; with --into they
keep the farm's names in that folder. A real process against a coordinator
that lies (tests/support/crafted_farm.py)."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import FileOutput, setting_text
from tests.cli.test_crafted_pull import cli, pull
from tests.support.crafted_farm import CraftedFarm, crafted_farm, files_under
from tests.support.fakeblend import fake_blend_bytes

PASS = os.urandom(1200)


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[CraftedFarm]:
    with crafted_farm(tmp_path / "farm") as crafted:
        yield crafted


def test_pull_puts_file_output_files_where_the_submission_said(
    farm: CraftedFarm, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    project = home / "project"
    blend = project / "shot.blend"
    blend.parent.mkdir(parents=True)
    blend.write_bytes(fake_blend_bytes())
    passes = FileOutput("passes", 0, "PNG", f"{project}/passes/image_")
    result = cli(
        farm,
        home,
        *("submit", str(blend), "--frames", "1", "--output", str(project / "out" / "f_####")),
        *("--set", f"file_outputs={setting_text([passes])}"),
    )
    assert result.code == 0, result.err
    job_id = int(result.out.split()[0])
    elsewhere = home / "elsewhere"
    farm.settings[job_id] = {
        "output": str(elsewhere / "f_####"),
        "file_outputs": json.dumps([{**passes.to_json(), "path": f"{elsewhere}/x_"}]),
    }
    farm.outputs[job_id] = {
        "f_0001.png": PASS,
        "fileout1-0001.png": PASS,
        "fileout2-0001.png": PASS,  # not submitted from here
    }
    result = pull(farm, home, str(job_id))
    assert result.code == 1, result.err
    assert "fileout2-0001.png" in result.err and "no File Output file" in result.err
    assert files_under(home) == {
        "project/shot.blend": blend.read_bytes(),
        "project/out/f_0001.png": PASS,
        "project/passes/image_0001.png": PASS,
        **{k: v for k, v in files_under(home).items() if k.startswith("data/")},
    }

    result = pull(farm, home, str(job_id), "--into", str(home / "into"))
    assert sorted(p.name for p in (home / "into").iterdir()) == [
        "f_0001.png",
        "fileout1-0001.png",
        "fileout2-0001.png",
    ]
