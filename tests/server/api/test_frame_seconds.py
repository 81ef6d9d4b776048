"""The render time of a frame, as the job page shows it: each task's stages in the
task list, and the job's median of (last frame saved - Blender ready) / frames."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import API, AUTH, claim, finish, get_job, register, sha, submit_render

Client = TestClient[Any, Any]


async def _render(
    client: Client, worker: dict[str, str], stages: dict[str, float] | None
) -> dict[str, Any]:
    """Claim the next task, report its stages, upload its frames and complete it."""
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    if stages is not None:
        resp = await client.post(
            f"{API}/worker/tasks/{task_id}/update", json={"stages": stages}, headers=worker
        )
        assert resp.status == 200, await resp.text()
    for frame in task["payload"]["frames"]:
        data = f"frame {frame}".encode()
        resp = await client.put(
            f"{API}/worker/tasks/{task_id}/outputs/frame_{frame:04d}.png"
            f"?sha256={sha(data)}&frame={frame}",
            data=data,
            headers=worker,
        )
        assert resp.status == 201, await resp.text()
    await finish(client, worker, task_id)
    return task


async def test_the_job_has_the_median_render_time_of_a_frame(
    client: Client, tmp_path: Path
) -> None:
    job = await submit_render(client, str(tmp_path / "frame_####"), frames="1-6")  # 3 tasks of 2
    assert (await get_job(client, job["id"]))["frame_seconds"] is None  # nothing measured yet
    worker = await register(client)
    # 2.0 s and 3.5 s a frame; start-up (before blender_ready) and upload do not count
    first = await _render(
        client, worker, {"blender_ready": 9.0, "last_frame_saved": 13.0, "uploaded": 30}
    )
    second = await _render(client, worker, {"blender_ready": 1.0, "last_frame_saved": 8.0})
    third = await _render(client, worker, None)  # measured nothing: left out, not taken as 0
    assert (await get_job(client, job["id"]))["frame_seconds"] == 2.75
    resp = await client.get(f"{API}/jobs/{job['id']}/tasks", headers=AUTH)
    stages = {t["id"]: t["stages"] for t in (await resp.json())["tasks"]}
    assert stages[first["task_id"]] == {
        "blender_ready": 9.0,
        "last_frame_saved": 13.0,
        "uploaded": 30.0,
    }
    assert stages[second["task_id"]] == {"blender_ready": 1.0, "last_frame_saved": 8.0}
    assert stages[third["task_id"]] == {}


async def test_a_job_without_frames_has_no_frame_time(client: Client) -> None:
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "nap", "type": "sleep", "settings": {"task_count": 1, "seconds": 0}},
    )
    job = await resp.json()
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update",
        json={"stages": {"blender_ready": 1.0, "last_frame_saved": 2.0}},
        headers=worker,
    )
    await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["frame_seconds"] is None
