"""A worker with a valid secret can act on the task it holds, and on nothing else.

Real processes on loopback: the coordinator, a rogue worker speaking the
protocol from this test, then an honest worker agent with real Blender.
"""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient, FarmClientError
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm, farm_fixture

pytestmark = [pytest.mark.blender, pytest.mark.slow]

farm = farm_fixture(lease_seconds=5.0)


def refused(call: object, *args: object, **kwargs: object) -> FarmClientError:
    try:
        call(*args, **kwargs)  # type: ignore[operator]
    except FarmClientError as ex:
        return ex
    raise AssertionError(f"{call} was accepted")


def test_a_rogue_worker_cannot_replace_the_artists_files_nor_finish_without_frames(
    farm: LocalFarm, tmp_path: Path
) -> None:
    scene = make_scene(tmp_path / "project" / "shot.blend", frames=(1, 2))
    out = tmp_path / "out"
    out.mkdir()
    (out / "shot.blend").write_bytes(b"the artist's own file")  # saved next to the frames
    client = farm.client()
    hashes, _ = client.upload_project({"shot.blend": scene})
    job = client.submit(
        {
            "name": "rogue target",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            # no file_format: the scene's, which only the worker's Blender knows
            "settings": {"frames": "1-2", "chunk_size": 1, "output": str(out / "frame_####")},
        }
    )
    creds = client.register_worker(name="rogue", host="h", blender_version="3.4", devices=["CPU"])
    rogue = client.with_token(creds.secret)
    task = rogue.next_task(wait=5)
    assert task is not None
    mine = task.payload["frames"][0]
    other = 3 - mine
    bad = tmp_path / "payload.bin"
    bad.write_bytes(b"import os  # not a frame")

    ex = refused(rogue.upload_output, task.task_id, bad, name="shot.blend", frame=mine)
    assert ex.status == 400
    assert "does not produce 'shot.blend'" in ex.message
    assert f"frame_{mine:04d}.png" in ex.message  # it says what the task may upload

    ex = refused(rogue.upload_output, task.task_id, bad, name=f"frame_{other:04d}.png", frame=other)
    assert ex.status == 400 and f"does not produce 'frame_{other:04d}.png'" in ex.message

    ex = refused(rogue.complete_task, task.task_id)
    assert ex.status == 400
    assert f"frame_{mine:04d}.png (or the same name" in ex.message
    assert "has not been uploaded" in ex.message

    assert client.outputs(int(job["id"])) == []
    assert client.job(int(job["id"]))["status"] != "completed"
    rogue.sign_off()  # hands the task back

    # An honest worker renders both frames; the artist's file stays as it was.
    farm.start_worker("honest", "--no-standby", blender=DEBIAN_BLENDER)
    done = farm.wait_for_job(int(job["id"]), timeout=180)
    assert done["status"] == "completed", done["status_reason"]
    assert sorted(os.listdir(out)) == ["frame_0001.png", "frame_0002.png", "shot.blend"]
    assert (out / "shot.blend").read_bytes() == b"the artist's own file"

    # Frames get the mode a local render gives them (this process's umask, which
    # the coordinator inherited); the farm's own folders are private.
    umask = os.umask(0o022)
    os.umask(umask)
    assert stat.S_IMODE((out / "frame_0001.png").stat().st_mode) == 0o666 & ~umask
    data = farm.root / "coordinator"
    for folder in ("files", "jobs", "tmp"):
        assert stat.S_IMODE((data / folder).stat().st_mode) == 0o700, folder


@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_farm_token_is_on_no_command_line(farm: LocalFarm) -> None:
    worker = farm.start_worker("plain", "--no-standby", blender=DEBIAN_BLENDER)
    for child in (farm.coordinator, worker):
        assert child is not None
        cmdline = Path(f"/proc/{child.process.pid}/cmdline").read_bytes()
        assert farm.token.encode() not in cmdline, child.name
    assert FarmClient(farm.url, token=farm.token).workers()  # and the worker did join
