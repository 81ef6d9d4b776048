"""The failure policy's interruptions, on the API: a worker that restarts, signs off
or goes silent mid-task costs the task no try, up to MAX_INTERRUPTIONS."""

from __future__ import annotations

import time
from typing import Any

from aiohttp.test_utils import TestClient

from coordinator.server.services.retries import MAX_INTERRUPTIONS
from tests.conftest import API, AUTH, claim, farm_of, get_job, get_task, register, submit_sleep

Client = TestClient[Any, Any]


async def _start(client: Client, worker: dict[str, str]) -> int:
    """Claim the job's task and report on it, as a worker that began rendering."""
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={"progress": 0.3}, headers=worker
    )
    assert resp.status == 200
    return int(task["task_id"])


async def test_an_expired_lease_spends_no_try_even_with_one_allowed(client: Client) -> None:
    worker = await register(client, "silent")
    job = await submit_sleep(client, count=1, max_attempts=1)
    task_id = await _start(client, worker)
    farm_of(client).sweeps.sweep(now=time.time() + 3600)  # its lease ran out long ago
    detail = await get_task(client, task_id)
    assert (detail["status"], detail["attempts"], detail["interruptions"]) == ("queued", 1, 1)
    assert detail["failures"][0]["blamed"] is False
    assert "lease expired" in detail["failures"][0]["reason"]
    assert (await get_job(client, job["id"]))["status"] in ("queued", "active")


async def test_a_real_failure_after_interruptions_still_has_its_tries(client: Client) -> None:
    worker, other = await register(client, "flaky"), await register(client, "other")
    await submit_sleep(client, count=1, max_attempts=2)
    task_id = await _start(client, worker)
    for _ in range(2):  # restarted twice while rendering it
        assert await _start(client, worker) == task_id
    resp = await client.post(
        f"{API}/worker/tasks/{task_id}/fail", json={"reason": "Blender crashed"}, headers=worker
    )
    assert resp.status == 200, await resp.text()
    detail = await get_task(client, task_id)
    # three attempts, two interrupted: one try of two spent, so it goes on
    assert (detail["status"], detail["attempts"], detail["interruptions"]) == ("queued", 3, 2)
    assert await _start(client, other) == task_id
    resp = await client.post(
        f"{API}/worker/tasks/{task_id}/fail", json={"reason": "Blender crashed"}, headers=other
    )
    assert resp.status == 200, await resp.text()
    assert (await get_task(client, task_id))["status"] == "failed"  # both tries spent


async def test_the_cap_of_interruptions_fails_the_task_saying_so(client: Client) -> None:
    worker = await register(client, "crashing")
    job = await submit_sleep(client, count=1)
    task_id = await _start(client, worker)
    for _ in range(MAX_INTERRUPTIONS - 1):
        assert await _start(client, worker) == task_id  # interrupted, queued, taken again
    assert await claim(client, worker) is None  # the last interruption failed it
    detail = await get_task(client, task_id)
    assert (detail["status"], detail["interruptions"]) == ("failed", MAX_INTERRUPTIONS)
    failed = await get_job(client, job["id"])
    assert failed["status"] == "failed"
    assert f"interrupted {MAX_INTERRUPTIONS} times" in failed["status_reason"]
    assert "the most a task may be" in failed["status_reason"]


async def test_a_person_requeue_forgets_the_interruptions(client: Client) -> None:
    worker = await register(client, "w")
    await submit_sleep(client, count=1)
    task_id = await _start(client, worker)
    await _start(client, worker)
    resp = await client.post(f"{API}/tasks/{task_id}/requeue", headers=AUTH)
    assert resp.status == 200, await resp.text()
    detail = await get_task(client, task_id)
    assert (detail["attempts"], detail["interruptions"]) == (0, 0)
