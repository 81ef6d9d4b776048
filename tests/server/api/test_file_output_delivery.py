"""File Output files through the worker protocol: a task may upload only the
names its listed nodes give its frames, completes only once they arrived, and
each lands at the destination the submission named; a regenerate that moves
them delivers the kept ones again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from coordinator.core.fileoutputs import FileOutput, setting_text
from tests.conftest import API, AUTH, claim, finish, register, submit_render, wait_until

Client = TestClient[Any, Any]


async def put(client: Client, worker: dict[str, str], task_id: int, name: str, frame: int) -> Any:
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/{name}?frame={frame}",
        data=f"{name} pixels".encode(),
        headers=worker,
    )
    return resp.status, await resp.json()


async def delivered(client: Client, job_id: int) -> dict[str, str | None]:
    resp = await client.get(f"{API}/jobs/{job_id}/outputs", headers=AUTH)
    return {o["name"]: o["delivered_path"] for o in (await resp.json())["outputs"]}


async def test_file_output_files_are_expected_and_land_where_the_submission_said(
    client: Client, tmp_path: Path
) -> None:
    passes = FileOutput("passes", 0, "PNG", f"{tmp_path}/shot/passes/image_")
    job = await submit_render(
        client,
        str(tmp_path / "shot" / "render" / "frame_####"),
        frames="1",
        file_format="PNG",
        file_outputs=setting_text([passes]),
    )
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    assert task["payload"]["file_outputs"] == [
        {"node": "passes", "slot": 0, "file_format": "PNG", "codec": "JP2"}
    ]
    assert (await put(client, worker, task_id, "frame_0001.png", 1))[0] == 201
    status, body = await put(client, worker, task_id, "fileout2-0001.png", 1)
    assert status == 400 and "does not produce 'fileout2-0001.png'" in body["error"]
    resp = await client.post(f"{API}/worker/tasks/{task_id}/complete", headers=worker)
    assert resp.status == 400, await resp.text()
    assert "fileout1-0001.png" in (await resp.json())["error"]

    assert (await put(client, worker, task_id, "fileout1-0001.png", 1))[0] == 201
    await finish(client, worker, task_id)
    assert await delivered(client, job["id"]) == {
        "frame_0001.png": str(tmp_path / "shot" / "render" / "frame_0001.png"),
        "fileout1-0001.png": str(tmp_path / "shot" / "passes" / "image_0001.png"),
    }
    assert (tmp_path / "shot" / "passes" / "image_0001.png").read_bytes() == (
        b"fileout1-0001.png pixels"
    )

    moved = FileOutput("passes", 0, "PNG", f"{tmp_path}/elsewhere/img.")
    resp = await client.post(
        f"{API}/jobs/{job['id']}/regenerate",
        json={"settings": {"file_outputs": setting_text([moved])}},
        headers=AUTH,
    )
    assert resp.status == 200, await resp.text()
    want = str(tmp_path / "elsewhere" / "img.0001.png")

    async def moved_there() -> bool:
        return (await delivered(client, job["id"]))["fileout1-0001.png"] == want

    await wait_until(moved_there, what="the File Output file to be delivered to its new place")
