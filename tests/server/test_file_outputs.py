"""The file_outputs setting of blender-render: checked at submission, carried by
each task (node, slot, format; not the destinations), expected among its
outputs, and delivered to the destination the submission named."""

from __future__ import annotations

import asyncio
import json
import os
import time
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import FileOutput, setting_text
from coordinator.server.config import FarmConfig
from coordinator.server.farm import Farm
from coordinator.server.filestore import FileStore
from coordinator.server.hub import Hub
from coordinator.server.job_types import SettingsError, get
from coordinator.server.job_types.fileoutputs import delivery_target
from coordinator.server.job_types.outputs import expected_outputs
from coordinator.server.services.jobs import NewJob
from coordinator.server.store import Store

PASSES = [
    FileOutput("passes", 0, "PNG", "/shot/passes/image_"),
    FileOutput("passes", 1, "OPEN_EXR", "/shot/passes/normal/N_###"),
]


def settings(**extra: object) -> dict[str, object]:
    base = {"frames": "1-3", "chunk_size": 2, "output": "/shot/render/f_####"}
    return get("blender-render").validate({**base, **extra})


def test_tasks_carry_the_nodes_and_expect_their_files() -> None:
    job = settings(file_outputs=setting_text(PASSES), file_format="PNG")
    tasks = get("blender-render").compile(job)
    payload = tasks[0].payload
    assert payload["file_outputs"] == [
        {"node": "passes", "slot": 0, "file_format": "PNG", "codec": "JP2"},
        {"node": "passes", "slot": 1, "file_format": "OPEN_EXR", "codec": "JP2"},
    ]
    expected = expected_outputs("render", json.dumps(payload))
    assert sorted(expected.names) == [
        "f_0001.png",
        "f_0002.png",
        "fileout1-0001.png",
        "fileout1-0002.png",
        "fileout2-0001.exr",
        "fileout2-0002.exr",
    ]
    assert expected.first_missing({"f_0001.png", "f_0002.png"}) == "fileout1-0001.png"


def test_a_job_without_file_outputs_compiles_as_before() -> None:
    tasks = get("blender-render").compile(settings())
    assert "file_outputs" not in tasks[0].payload


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("[{}]", "'node' must be a node name"),
        (json.dumps([{**PASSES[0].to_json(), "path": "passes/image_"}]), "not absolute"),
    ],
)
def test_a_bad_map_is_refused_at_submission(value: str, message: str) -> None:
    with pytest.raises(SettingsError, match=message) as caught:
        settings(file_outputs=value)
    assert caught.value.field == "file_outputs"


def test_delivery_targets(tmp_path: Path) -> None:
    job = settings(
        output=f"{tmp_path}/render/f_####",
        file_outputs=setting_text([FileOutput("passes", 0, "PNG", f"{tmp_path}/passes/image_")]),
    )
    assert delivery_target(job, "f_0001.png", 1) == tmp_path / "render" / "f_0001.png"
    assert delivery_target(job, "fileout1-0002.png", 2) == tmp_path / "passes" / "image_0002.png"
    assert delivery_target(job, "fileout1-0002.png", 3) == (
        "not delivered: 'fileout1-0002.png' is not the name of frame 3 of 'passes'"
    )
    windows = settings(
        output="C:\\shot\\f_####",
        file_outputs=setting_text([FileOutput("passes", 0, "PNG", "C:\\shot\\passes\\i_")]),
    )
    assert delivery_target(windows, "fileout1-0001.png", 1) == (
        "'C:\\\\shot\\\\passes\\\\i_0001.png' is not a path on this machine;"
        " fetch the output from the farm"
    )


def test_on_start_half_copies_are_removed_from_file_output_folders_too(tmp_path: Path) -> None:
    """A coordinator killed mid-copy leaves ".<name>.<8>.part" beside the destination:
    in the File Output node's folder, not the frames', for its files."""
    store = Store(tmp_path / "farm.sqlite3")
    config = FarmConfig(data_dir=tmp_path, name="t", token="x" * 32, lease_seconds=60.0)
    farm = Farm(config, store, FileStore(tmp_path, max_upload=1 << 20), Hub())
    try:
        job = farm.jobs.submit(NewJob(name="j", type="sleep", settings={}, files={}))
        passes = tmp_path / "shot" / "passes"
        job_settings = settings(
            output=f"{tmp_path}/shot/render/f_####",
            file_outputs=setting_text([FileOutput("passes", 0, "PNG", f"{passes}/image_")]),
        )
        store.run(
            "UPDATE jobs SET settings = ?, deliver = 1 WHERE id = ?",
            json.dumps(job_settings),
            job["id"],
        )
        for name in ("f_0001.png", "fileout1-0001.png"):
            store.run(
                "INSERT INTO outputs (job_id, task_id, name, frame, sha256, size, created_at)"
                " VALUES (?, 1, ?, 1, ?, 1, 0)",
                job["id"],
                name,
                "0" * 64,
            )
        passes.mkdir(parents=True)
        (tmp_path / "shot" / "render").mkdir()
        stale = [
            passes / ".image_0001.png.abcd1234.part",
            tmp_path / "shot" / "render" / ".f_0001.png.abcd1234.part",
        ]
        kept = passes / ".image_0002.png.abcd1234.part"  # no output of the job
        for path in [*stale, kept]:
            path.write_bytes(b"half")
            os.utime(path, (time.time() - 60, time.time() - 60))
        farm.ctx.started_at = time.time()
        assert asyncio.run(farm.deliveries.clean_partial()) == 2
        assert [p.exists() for p in stale] == [False, False] and kept.exists()
    finally:
        store.close()
