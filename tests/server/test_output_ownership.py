"""One output name, one producing task: a worker can't overwrite another task's frame."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, register, sha, submit_sleep


async def upload(
    client: TestClient[Any, Any], worker: dict[str, str], task_id: int, name: str, data: bytes
) -> Any:
    return await client.put(
        f"/api/v1/worker/tasks/{task_id}/outputs/{name}?frame=1&sha256={sha(data)}",
        data=data, headers=worker,
    )  # fmt: skip


async def test_a_task_cannot_replace_a_frame_another_task_made(
    client: TestClient[Any, Any],
) -> None:
    first, second = await register(client, "a"), await register(client, "b")
    job = await submit_sleep(client, count=2, deliver=False)
    t1 = await (await client.post("/api/v1/worker/task?wait=0", headers=first)).json()
    t2 = await (await client.post("/api/v1/worker/task?wait=0", headers=second)).json()
    assert (await upload(client, first, t1["task_id"], "f_0001.png", b"good")).status == 201
    await client.post(f"/api/v1/worker/tasks/{t1['task_id']}/complete", headers=first)
    resp = await upload(client, second, t2["task_id"], "f_0001.png", b"other")
    assert resp.status == 409
    assert f"output of task {t1['task_id']}" in (await resp.json())["error"]
    outputs = await (await client.get(f"/api/v1/jobs/{job['id']}/outputs", headers=AUTH)).json()
    assert [(o["name"], o["sha256"], o["task_id"]) for o in outputs["outputs"]] == [
        ("f_0001.png", sha(b"good"), t1["task_id"])
    ]


async def test_a_new_attempt_of_the_same_task_may_replace_its_output(
    client: TestClient[Any, Any],
) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1, deliver=False)
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    assert (await upload(client, worker, task["task_id"], "f_0001.png", b"one")).status == 201
    assert (await upload(client, worker, task["task_id"], "f_0001.png", b"two")).status == 201
