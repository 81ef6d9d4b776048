"""A real worker process (`python -m worker_agent`) against a coordinator that lies
(tests/support/crafted_farm.py): assignments whose .blend is absolute, climbs out,
or is not one of the job's files, and output, merged-output and merge-input names
that leave the folder on some OS. Each task fails with a reason that says what was
refused, before any project file is fetched or Blender opens anything; the worker
keeps serving and finishes an honest task afterwards."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from coordinator.core.protocol import API_PREFIX
from tests.support.crafted_farm import CraftedFarm, crafted_farm, files_under
from tests.support.localfarm import REPO_ROOT
from worker_agent.in_blender.merge import MergeError, MergeTask

pytestmark = pytest.mark.timeout(120)

BLEND = b"BLENDER-v304 the job's own file"
SHA = hashlib.sha256(BLEND).hexdigest()
FILES = {"shot.blend": SHA}


def render(**fields: Any) -> dict[str, Any]:
    """A render assignment for shot.blend, with `fields` put over it."""
    payload = {"frames": [1], "output_name": "f_####", **fields.pop("payload", {})}
    return {"kind": "render", "blend": "shot.blend", "files": FILES, "payload": payload, **fields}


def merge(merged_output: str, inputs: tuple[str, str]) -> dict[str, Any]:
    merges = [
        {
            "frame": 1,
            "inputs": [{"name": n, "samples": 1} for n in inputs],
            "merged_output": merged_output,
        }
    ]
    payload = {"merges": merges, "samples": 2, "output_name": "f_####"}
    return {**render(), "kind": "merge", "payload": payload, "inputs": dict.fromkeys(inputs, SHA)}


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[CraftedFarm]:
    with crafted_farm(tmp_path / "farm") as crafted:
        yield crafted


@pytest.fixture
def fake_blender(tmp_path: Path) -> tuple[Path, Path]:
    """A `blender` that answers the worker's version probe and notes every call:
    the test shows Blender was never asked to open a .blend."""
    calls = tmp_path / "blender-calls.txt"
    exe = tmp_path / "bin" / "blender"
    exe.parent.mkdir()
    exe.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$*\" >> {calls}\necho 'Blender 4.2.0'\n")
    exe.chmod(0o755)
    return exe, calls


def worker(farm: CraftedFarm, tmp_path: Path, blender: Path) -> subprocess.Popen[bytes]:
    argv = [sys.executable, "-m", "worker_agent", "--coordinator", farm.url, "--name", "w"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--poll-wait", "2", "--no-standby"]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "FARM_TOKEN": farm.token}
    with (tmp_path / "worker.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(
            [*argv, "--blender", str(blender)], stdout=log, stderr=subprocess.STDOUT, env=env
        )


def wait_for_end(farm: CraftedFarm, job_id: int, process: subprocess.Popen[bytes]) -> Any:
    deadline = time.monotonic() + 60
    while (job := farm.client().job(job_id))["status"] not in ("completed", "failed"):
        assert process.poll() is None, "the worker exited"
        assert time.monotonic() < deadline, f"job {job_id} never ended: {job['status']}"
        time.sleep(0.1)
    return job


def crafted(secret: Path) -> list[tuple[str, dict[str, Any], str]]:
    """(job name, what its assignment says, what the failure reason must say)."""
    return [
        ("absolute .blend", render(blend=str(secret)), "is refused: it is absolute"),
        ("climbing .blend", render(blend="../x.blend", files={"../x.blend": SHA}), "'..'"),
        ("blend not the job's", render(blend="other.blend"), "is not one of the job's files"),
        ("drive-relative output", render(payload={"output_name": "C:f_####"}), "':'"),
        ("UNC output", render(payload={"output_name": "\\\\server\\x"}), "path separator"),
        ("climbing output", render(payload={"output_name": "../f_####"}), "path separator"),
        ("climbing merged output", merge("../../m.exr", ("a.exr", "b.exr")), "merged output"),
        ("climbing merge input", merge("m.exr", ("a.exr", "../../etc/x.exr")), "merge input"),
    ]


def test_unsafe_assignments_fail_their_task_and_the_worker_keeps_serving(
    farm: CraftedFarm, tmp_path: Path, fake_blender: tuple[Path, Path]
) -> None:
    blender, calls = fake_blender
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.blend").write_bytes(b"BLENDER-v304 not the farm's")
    client = farm.client()
    client.upload_project({"shot.blend": _file(tmp_path / "shot.blend", BLEND)})
    process = worker(farm, tmp_path, blender)
    try:
        for what, craft, says in crafted(elsewhere / "secret.blend"):
            farm.assignments[what] = craft
            job = client.submit(
                {"name": what, "type": "sleep", "max_attempts": 1, "settings": {"seconds": 0}}
            )
            ended = wait_for_end(farm, int(job["id"]), process)
            reason = ended["status_reason"] or ""
            assert ended["status"] == "failed", (what, ended)
            assert says in reason and "Nothing was run" in reason, (what, reason)
        honest = client.submit({"name": "honest", "type": "sleep", "settings": {"seconds": 0}})
        assert wait_for_end(farm, int(honest["id"]), process)["status"] == "completed"
        assert process.poll() is None
    finally:
        process.terminate()
        process.wait(30)
    log = (tmp_path / "worker.log").read_text()
    assert "Traceback" not in log and "internal error" not in log
    assert ".blend" not in calls.read_text()  # Blender only answered its version probe
    fetched = [r for r in farm.requests if r.startswith(f"GET {API_PREFIX}/files/")]
    assert fetched == [] and not any("/inputs/" in r or "/outputs/" in r for r in farm.requests)
    assert not [p for p in files_under(tmp_path / "cache") if "/project/" in p]
    assert sorted(files_under(elsewhere)) == ["secret.blend"]


def _file(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize(
    ("field", "value"),
    [("merged_output", "../m.exr"), ("merged_output", "C:m.exr"), ("output_name", "a/f_####")],
)
def test_the_merge_inside_blender_refuses_unsafe_names_too(field: str, value: str) -> None:
    """A second guard where the merge writes, should a task reach Blender unchecked."""
    frame = {"frame": 1, "inputs": [{"path": "/a.exr", "samples": 1}] * 2, "merged_output": "m"}
    data: dict[str, Any] = {"blend": "/b.blend", "output_dir": "/o", "samples": 2}
    assert MergeTask.from_json({**data, "merges": [frame]})  # plain names pass
    if field == "merged_output":
        frame = {**frame, "merged_output": value}
    else:
        data = {**data, "output_name": value}
    with pytest.raises(MergeError, match="is not a plain file name"):
        MergeTask.from_json({**data, "merges": [frame]})
