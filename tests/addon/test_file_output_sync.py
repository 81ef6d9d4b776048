"""File Output files come home through the add-on's sync from a farm elsewhere:
where the artist's own submission pointed each node (the record), never where
the coordinator's reply says; a name the submission did not list is refused
(tests/support/crafted_farm.py lies in its replies)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from flamenco_addon import submitting
from flamenco_addon.background import Channel
from flamenco_addon.packing import plan_pack
from flamenco_addon.panel_text import submit_warnings
from flamenco_addon.submission import JobForm, SceneSnapshot, SubmitError, job_settings
from flamenco_addon.sync import JobRecords, Syncer
from tests.support.crafted_farm import crafted_farm, files_under

PASS = os.urandom(1500)
NODES = (
    {"node": "passes", "slot": 0, "label": "image_", "directory": "//passes/",
     "name": "image_", "file_format": "PNG", "codec": "JP2"},
)  # fmt: skip


def snapshot(blend: Path, nodes: tuple[dict[str, object], ...] = NODES) -> SceneSnapshot:
    return SceneSnapshot(
        str(blend), "Scene", "Camera", 1, 1, 1, "//out/f_####", "PNG", file_outputs=nodes
    )


def test_the_job_sends_each_file_with_its_destination_resolved_here(tmp_path: Path) -> None:
    settings = job_settings(snapshot(tmp_path / "shot.blend"), JobForm())
    assert json.loads(settings["file_outputs"]) == [
        {"node": "passes", "slot": 0, "file_format": "PNG", "codec": "JP2",
         "path": f"{tmp_path}/passes/image_"},
    ]  # fmt: skip
    assert "file_outputs" not in job_settings(snapshot(tmp_path / "shot.blend", ()), JobForm())
    relative = ({**NODES[0], "directory": "passes/"},)
    with pytest.raises(SubmitError, match="the compositor's File Output node 'passes'"):
        job_settings(snapshot(tmp_path / "shot.blend", relative), JobForm())


def synced(tmp_path: Path, *, lie: bool) -> tuple[Path, dict[str, bytes], str]:
    """Submit from a .blend with one File Output file, then sync the job's outputs:
    the farm's own, and two names the submission did not list. `lie`: the farm's
    replies name another destination for the File Output file. -> (home, the
    files under it, the sync's status line)"""
    home = tmp_path / "home"
    project = home / "project"
    project.mkdir(parents=True)
    blend = project / "shot.blend"
    blend.write_bytes(b"BLENDER-v304 fake")
    pack = tmp_path / "pack"
    pack.mkdir()
    (pack / "shot.blend").write_bytes(blend.read_bytes())
    elsewhere = home / ".config" / "startup"
    with crafted_farm(tmp_path / "farm") as farm:
        if lie:
            farm.created = {
                "output": str(project / "out" / "f_####"),
                "file_outputs": json.dumps([{**NODES[0], "path": f"{elsewhere}/evil_"}]),
            }
        sub = submitting.Submission(
            client=farm.client(),
            plan=plan_pack(str(blend), []),
            pack_root=pack,
            rewrite_command=[sys.executable, "-c", "print('REWRITE_DONE')"],
            snapshot=snapshot(blend),
            form=JobForm(chunk_size=1),
            deliver=False,
        )
        job = submitting.run(sub, Channel())
        if lie:
            farm.settings[job["id"]] = farm.created
        record = submitting.record_of(sub, job)
        farm.outputs[job["id"]] = {
            "f_0001.png": PASS,
            "fileout1-0001.png": PASS,  # listed: image_, frame 1
            "fileout2-0001.png": PASS,  # no second file was submitted
            "fileout1-0002.png": PASS,  # not frame 1's name
        }
        records = JobRecords(tmp_path / "records.json")
        records.add(record)
        syncer = Syncer(records, lambda _url: farm.token)
        syncer.blends.add(os.path.normcase(record.blend))
        syncer.run_once()
    return home, files_under(home), syncer.status[job["id"]]


def test_sync_puts_them_where_the_submission_said(tmp_path: Path) -> None:
    _home, files, line = synced(tmp_path, lie=False)
    assert files == {
        "project/shot.blend": b"BLENDER-v304 fake",
        "project/out/f_0001.png": PASS,
        "project/passes/image_0001.png": PASS,
    }
    assert line.startswith("2 frame(s) home; skipped unsafe: file name from the farm")
    assert "(and 1 more)" in line


def test_a_farm_that_lists_other_file_outputs_gets_none_mapped(tmp_path: Path) -> None:
    """Its replies name another destination (a lie, or a regenerate made elsewhere):
    the record no longer says what the farm's names mean, so no File Output file is
    written anywhere, and the sync says why; the render's own frame still lands."""
    _home, files, line = synced(tmp_path, lie=True)
    assert files == {
        "project/shot.blend": b"BLENDER-v304 fake",
        "project/out/f_0001.png": PASS,
    }
    assert "File Output settings were changed on the farm" in line, line


def test_the_panel_says_before_submit_which_node_cannot_come_home(tmp_path: Path) -> None:
    url = "https://farm:8765"
    assert submit_warnings(snapshot(tmp_path / "shot.blend"), url=url, token="t", missing=[]) == []
    relative = ({**NODES[0], "directory": "passes/"},)
    (said,) = submit_warnings(
        snapshot(tmp_path / "shot.blend", relative), url=url, token="t", missing=[]
    )
    assert said.startswith("The compositor's File Output node 'passes', input 'image_':")
