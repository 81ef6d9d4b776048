"""complete {"next": true}: the completion carries the worker's next task."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, register, submit_sleep


async def test_completion_hands_out_the_next_task_until_none_is_left(
    client: TestClient[Any, Any],
) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=3)
    resp = await client.post("/api/v1/worker/task?wait=0", headers=worker)
    task_id = (await resp.json())["task_id"]
    seen = [task_id]
    while True:
        resp = await client.post(
            f"/api/v1/worker/tasks/{task_id}/complete", json={"next": True}, headers=worker
        )
        assert resp.status == 200, await resp.text()
        body = await resp.json()
        if body["next"] is None:
            break
        task_id = body["next"]["task_id"]
        assert body["next"]["job_id"] == job["id"]
        seen.append(task_id)
    assert len(set(seen)) == 3
    resp = await client.get(f"/api/v1/jobs/{job['id']}", headers=AUTH)
    assert (await resp.json())["status"] == "completed"
    workers = await (await client.get("/api/v1/workers", headers=AUTH)).json()
    assert workers["workers"][0]["status"] == "idle"


async def test_plain_completion_claims_nothing(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    await submit_sleep(client, count=2)
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    resp = await client.post(f"/api/v1/worker/tasks/{task['task_id']}/complete", headers=worker)
    assert await resp.json() == {"ok": True}
    tasks = (await (await client.get("/api/v1/jobs/1", headers=AUTH)).json())["tasks"]
    assert [t["status"] for t in tasks] == ["completed", "queued"]


async def test_next_must_be_a_boolean(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    resp = await client.post(
        f"/api/v1/worker/tasks/{task['task_id']}/complete", json={"next": "yes"}, headers=worker
    )
    assert resp.status == 400
    assert "next" in (await resp.json())["error"]


async def test_a_retried_completion_is_accepted_and_hands_out_the_same_next_task(
    client: TestClient[Any, Any],
) -> None:
    """The reply to complete+next got lost; the worker sends it again."""
    worker = await register(client)
    await submit_sleep(client, count=3)
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    url = f"/api/v1/worker/tasks/{task['task_id']}/complete"
    first = await (await client.post(url, json={"next": True}, headers=worker)).json()
    resp = await client.post(url, json={"next": True}, headers=worker)
    assert resp.status == 200, await resp.text()
    again = await resp.json()
    assert again["next"]["task_id"] == first["next"]["task_id"]
    tasks = (await (await client.get("/api/v1/jobs/1", headers=AUTH)).json())["tasks"]
    assert [t["status"] for t in tasks] == ["completed", "active", "queued"]


async def test_a_worker_names_its_warm_job_when_it_asks_and_when_it_completes(
    client: TestClient[Any, Any],
) -> None:
    """Two jobs of equal priority: the worker keeps getting the newer one it has warm."""
    worker = await register(client)
    older = await submit_sleep(client, count=2, name="older")
    newer = await submit_sleep(client, count=2, name="newer")
    resp = await client.post(
        "/api/v1/worker/task?wait=0", json={"warm_job": newer["id"]}, headers=worker
    )
    first = await resp.json()
    assert first["job_id"] == newer["id"]
    resp = await client.post(
        f"/api/v1/worker/tasks/{first['task_id']}/complete",
        json={"next": True, "warm_job": newer["id"]},
        headers=worker,
    )
    second = (await resp.json())["next"]
    assert second["job_id"] == newer["id"]
    resp = await client.post(
        f"/api/v1/worker/tasks/{second['task_id']}/complete",
        json={"next": True, "warm_job": newer["id"]},
        headers=worker,
    )
    assert (await resp.json())["next"]["job_id"] == older["id"]  # the warm one ran out


async def test_no_warm_job_means_the_oldest_first(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    older = await submit_sleep(client, count=1, name="older")
    await submit_sleep(client, count=1, name="newer")
    resp = await client.post("/api/v1/worker/task?wait=0", json={"warm_job": None}, headers=worker)
    assert (await resp.json())["job_id"] == older["id"]


async def test_warm_job_must_be_a_job_id(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    for bad in (0, -3, "1", True, 1.5, [1]):
        resp = await client.post(
            "/api/v1/worker/task?wait=0", json={"warm_job": bad}, headers=worker
        )
        assert resp.status == 400, bad
        assert "warm_job" in (await resp.json())["error"]
    task = await (await client.post("/api/v1/worker/task?wait=0", headers=worker)).json()
    resp = await client.post(
        f"/api/v1/worker/tasks/{task['task_id']}/complete",
        json={"next": True, "warm_job": "x"},
        headers=worker,
    )
    assert resp.status == 400
    assert "warm_job" in (await resp.json())["error"]
