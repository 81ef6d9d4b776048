"""An image-sequence job's preview video: made last, kept on the farm, served by its route."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import API, AUTH, claim, finish, get_job, register, submit_render

Client = TestClient[Any, Any]
WEBM = b"\x1aE\xdf\xa3 not really a webm"


async def render_frames(client: Client, worker: dict[str, str], job_id: int) -> None:
    """Claim and finish every render task, uploading its frames."""
    for _ in range(2):
        task = await claim(client, worker)
        assert task is not None and task["kind"] == "render", task
        for frame in task["payload"]["frames"]:
            resp = await client.put(
                f"{API}/worker/tasks/{task['task_id']}/outputs/frame_{frame:04d}.png?frame={frame}",
                data=f"png {frame}".encode(),
                headers=worker,
            )
            assert resp.status in (200, 201), await resp.text()
        await finish(client, worker, task["task_id"])


async def test_the_preview_is_made_last_kept_on_the_farm_and_served(
    client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = await submit_render(client, str(out / "frame_####"), frames="1-4", preview=True)
    worker = await register(client)
    await render_frames(client, worker, job["id"])
    preview = await claim(client, worker)
    assert preview is not None and preview["kind"] == "preview"
    assert preview["payload"]["source_frames"] == [1, 2, 3, 4]
    assert sorted(preview["inputs"]) == [f"frame_000{f}.png" for f in range(1, 5)]

    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 404 and "no preview video" in (await resp.json())["error"]
    resp = await client.put(
        f"{API}/worker/tasks/{preview['task_id']}/outputs/other.webm", data=WEBM, headers=worker
    )
    assert resp.status == 400  # only the preview's own name
    resp = await client.put(
        f"{API}/worker/tasks/{preview['task_id']}/outputs/farm_preview.webm",
        data=WEBM,
        headers=worker,
    )
    assert resp.status in (200, 201), await resp.text()
    await finish(client, worker, preview["task_id"])

    assert (await get_job(client, job["id"]))["status"] == "completed"
    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 200 and resp.content_type == "video/webm"
    assert await resp.read() == WEBM
    assert sorted(p.name for p in out.iterdir()) == [f"frame_000{f}.png" for f in range(1, 5)]
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    assert "farm_preview.webm" not in [o["name"] for o in (await resp.json())["outputs"]]


async def test_a_preview_the_worker_could_not_make_does_not_fail_the_job(
    client: Client, tmp_path: Path
) -> None:
    job = await submit_render(client, str(tmp_path / "frame_####"), frames="1-4", preview=True)
    worker = await register(client)
    await render_frames(client, worker, job["id"])
    preview = await claim(client, worker)
    assert preview is not None and preview["kind"] == "preview"
    await finish(client, worker, preview["task_id"])  # nothing uploaded
    assert (await get_job(client, job["id"]))["status"] == "completed"
    resp = await client.get(f"{API}/jobs/{job['id']}/preview", headers=AUTH)
    assert resp.status == 404


async def test_the_preview_of_an_unknown_job_is_not_found(client: Client) -> None:
    resp = await client.get(f"{API}/jobs/999/preview", headers=AUTH)
    assert resp.status == 404 and "999" in (await resp.json())["error"]
    resp = await client.get(f"{API}/jobs/1/preview")
    assert resp.status == 401


async def test_a_still_gets_no_preview_its_frame_is_its_own(client: Client, tmp_path: Path) -> None:
    for frames in ("5", "5,5"):  # one frame, however written
        job = await submit_render(client, str(tmp_path / "f_####"), frames=frames)
        kinds = [t["kind"] for t in (await get_job(client, job["id"]))["tasks"]]
        assert kinds == ["render"], (frames, kinds)
    job = await submit_render(client, str(tmp_path / "g_####"), frames="5-6")
    kinds = [t["kind"] for t in (await get_job(client, job["id"]))["tasks"]]
    assert kinds == ["render", "preview"]
