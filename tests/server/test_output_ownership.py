"""One output name, one producing task: a worker can't overwrite another task's frame."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, register, sha, submit_render


async def upload(
    client: TestClient[Any, Any], worker: dict[str, str], task_id: int, name: str, data: bytes
) -> Any:
    return await client.put(
        f"/api/v1/worker/tasks/{task_id}/outputs/{name}?frame=1&sha256={sha(data)}",
        data=data, headers=worker,
    )  # fmt: skip


async def test_a_task_cannot_replace_a_frame_another_task_made(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    first, second = await register(client, "a"), await register(client, "b")
    job = await submit_render(
        client, f"{tmp_path}/f_####", frames="1-2", chunk_size=1, file_format="PNG"
    )
    t1 = await (await client.post("/api/v1/worker/task?wait=0", headers=first)).json()
    t2 = await (await client.post("/api/v1/worker/task?wait=0", headers=second)).json()
    assert (await upload(client, first, t1["task_id"], "f_0001.png", b"good")).status == 201
    await client.post(f"/api/v1/worker/tasks/{t1['task_id']}/complete", headers=first)
    resp = await upload(client, second, t2["task_id"], "f_0001.png", b"other")
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert "does not produce 'f_0001.png'" in error and "may upload: f_0002.png" in error
    outputs = await (await client.get(f"/api/v1/jobs/{job['id']}/outputs", headers=AUTH)).json()
    assert [(o["name"], o["sha256"], o["task_id"]) for o in outputs["outputs"]] == [
        ("f_0001.png", sha(b"good"), t1["task_id"])
    ]
    assert (tmp_path / "f_0001.png").read_bytes() == b"good"


async def test_a_new_attempt_of_the_same_task_may_replace_its_output(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    worker = await register(client)
    await submit_render(client, f"{tmp_path}/f_####", frames="1", file_format="PNG")
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    assert (await upload(client, worker, task["task_id"], "f_0001.png", b"one")).status == 201
    assert (await upload(client, worker, task["task_id"], "f_0001.png", b"two")).status == 201
