from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient

from tests.conftest import AUTH, register, submit_sleep


async def test_sleep_job_runs_to_completion(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=2)
    assert job["status"] == "queued"
    for _ in range(2):
        resp = await client.post("/api/v1/worker/task?wait=0", headers=worker)
        assert resp.status == 200, await resp.text()
        task = await resp.json()
        resp = await client.post(
            f"/api/v1/worker/tasks/{task['task_id']}/update",
            json={"progress": 0.5, "log": "half way\n"},
            headers=worker,
        )
        assert resp.status == 200, await resp.text()
        resp = await client.post(f"/api/v1/worker/tasks/{task['task_id']}/complete", headers=worker)
        assert resp.status == 200, await resp.text()
    resp = await client.get(f"/api/v1/jobs/{job['id']}", headers=AUTH)
    body = await resp.json()
    assert body["status"] == "completed"
    assert body["progress"] == 1.0
    assert [t["status"] for t in body["tasks"]] == ["completed", "completed"]
