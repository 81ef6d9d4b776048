"""A job's eta_seconds: the pure estimate, and what the API sends."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server.views import estimate_eta
from tests.conftest import API, AUTH, claim, farm_of, finish, get_job, register, submit_sleep

Client = TestClient[Any, Any]
NOW = 1_000_000.0


@pytest.mark.parametrize(
    ("queued", "running", "workers", "eta"),
    [
        (10, [], 2, 50.0),  # ten tasks of 10 s on two workers
        (10, [], 20, 10.0),  # at most one task per worker: one round
        (0, [(0.5, NOW - 1)], 4, 5.0),  # half done by its progress
        (0, [(0.0, NOW - 8)], 4, 2.0),  # no progress reported: its time so far
        (0, [(0.0, NOW - 30)], 4, 0.0),  # over the median: nothing left to guess
        (4, [(0.9, NOW), (0.1, NOW)], 2, 25.0),  # 4 + 0.1 + 0.9 tasks on two workers
        (0, [], 3, 0.0),
    ],
)
def test_estimate(
    queued: int, running: list[tuple[float, float]], workers: int, eta: float
) -> None:
    assert estimate_eta(10.0, queued=queued, running=running, workers=workers, now=NOW) == eta


async def test_no_eta_until_a_task_finished_then_one_from_measured_times(client: Client) -> None:
    worker = await register(client, "w1")
    job = await submit_sleep(client, count=5)
    assert job["eta_seconds"] is None  # nothing measured yet
    first = await claim(client, worker)
    assert first is not None
    farm_of(client).ctx.store.run(  # as if it took 20 s
        "UPDATE tasks SET claimed_at = ? WHERE id = ?", time.time() - 20, first["task_id"]
    )
    await finish(client, worker, first["task_id"])
    eta = (await get_job(client, job["id"]))["eta_seconds"]
    assert eta == pytest.approx(80.0, abs=1.0)  # 4 tasks of 20 s, one worker
    await register(client, "w2")  # a second able worker halves it
    listed = await client.get(f"{API}/jobs", headers=AUTH)
    (entry,) = (j for j in (await listed.json())["jobs"] if j["id"] == job["id"])
    assert entry["eta_seconds"] == pytest.approx(40.0, abs=1.0)


async def test_no_eta_without_a_worker_or_when_paused(client: Client) -> None:
    worker = await register(client, "w1")
    job = await submit_sleep(client, count=3)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["eta_seconds"] is not None
    resp = await client.post(f"{API}/jobs/{job['id']}/pause", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await get_job(client, job["id"]))["eta_seconds"] is None
    resp = await client.post(f"{API}/jobs/{job['id']}/resume", headers=AUTH)
    assert resp.status == 200
    resp = await client.post(f"{API}/workers/{worker['X-Worker-Id']}/disable", headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await get_job(client, job["id"]))["eta_seconds"] is None  # nobody can run it
