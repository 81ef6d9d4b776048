"""Workers resting outside their working hours (`--work-hours`): shown as resting
until when, not offline; counted honestly in a job's warning and ETA (real SQLite,
real HTTP client)."""

from __future__ import annotations

import time
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import API, AUTH, claim, farm_of, finish, get_job, register, submit_sleep

Client = TestClient[Any, Any]


async def _rest(client: Client, worker: dict[str, str], until: object) -> Any:
    return await client.post(f"{API}/worker/rest", json={"until": until}, headers=worker)


async def _worker(client: Client, worker: dict[str, str]) -> dict[str, Any]:
    resp = await client.get(f"{API}/workers/{worker['X-Worker-Id']}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    body: dict[str, Any] = await resp.json()
    return body


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.localtime(at))


async def test_a_resting_worker_shows_until_when_and_wakes_when_it_asks_for_work(
    client: Client,
) -> None:
    worker = await register(client, "desk")
    until = time.time() + 3600
    resp = await _rest(client, worker, until)
    assert resp.status == 200, await resp.text()
    shown = await _worker(client, worker)
    assert shown["status"] == "resting" and shown["resting_until"] == pytest.approx(until)
    assert "remove" not in shown["actions"]  # online: a running agent
    # Heard from while resting: not swept offline.
    farm_of(client).sweeps.sweep(now=time.time() + 5)
    assert (await _worker(client, worker))["status"] == "resting"
    job = await submit_sleep(client, count=1)
    assert await claim(client, worker) is not None  # its hours began: it asked for work
    shown = await _worker(client, worker)
    assert shown["status"] == "busy" and shown["resting_until"] is None
    assert (await get_job(client, job["id"]))["warning"] == ""


async def test_only_resting_workers_the_warning_says_how_many_until_when(
    client: Client,
) -> None:
    a, b = await register(client, "a"), await register(client, "b")
    job = await submit_sleep(client, count=4)
    first = await claim(client, a)
    assert first is not None
    farm_of(client).ctx.store.run(  # as if it took 10 s
        "UPDATE tasks SET claimed_at = ? WHERE id = ?", time.time() - 10, first["task_id"]
    )
    await finish(client, a, first["task_id"])
    assert (await get_job(client, job["id"]))["eta_seconds"] == pytest.approx(15.0, abs=1)
    soon, later = time.time() + 600, time.time() + 7200
    await _rest(client, a, later)
    waiting = await get_job(client, job["id"])
    assert waiting["warning"] == ""  # b still works
    assert waiting["eta_seconds"] == pytest.approx(30.0, abs=1)  # 3 tasks, b alone
    await _rest(client, b, soon)
    waiting = await get_job(client, job["id"])
    assert waiting["warning"] == (
        f"2 workers able to run it are resting until {_clock(soon)} (working hours); the"
        " job starts when the first wakes"
    )
    # From when the first wakes: 600 s, then 3 tasks of 10 s on the two.
    assert waiting["eta_seconds"] == pytest.approx(600 + 15.0, abs=2)


async def test_a_resting_worker_that_cannot_run_the_job_is_not_what_it_waits_for(
    client: Client,
) -> None:
    worker = await register(client, "plain")
    await _rest(client, worker, time.time() + 600)
    job = await submit_sleep(client, count=1, requires_tags=["gpu"])
    warning = (await get_job(client, job["id"]))["warning"]
    assert warning.startswith("no online worker with tag gpu"), warning


async def test_a_task_held_when_resting_goes_back_at_no_cost(client: Client) -> None:
    worker = await register(client, "w")
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    assert (await _rest(client, worker, time.time() + 60)).status == 200
    resp = await client.get(f"{API}/tasks/{task['task_id']}", headers=AUTH)
    held = await resp.json()
    assert held["status"] == "queued" and held["interruptions"] == 1, held


@pytest.mark.parametrize("until", ["08:00", None, True, -1, 1e20])
async def test_a_rest_without_a_time_is_refused(client: Client, until: object) -> None:
    worker = await register(client, "w")
    resp = await _rest(client, worker, until)
    assert resp.status == 400
    assert "until" in (await resp.json())["error"]
    assert (await _worker(client, worker))["status"] == "idle"


async def test_a_resting_worker_is_still_left_to_try_a_failed_task(client: Client) -> None:
    a, b = await register(client, "a"), await register(client, "b")
    job = await submit_sleep(client, count=1)
    task = await claim(client, a)
    assert task is not None
    await _rest(client, b, time.time() + 600)
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/fail", json={"reason": "boom"}, headers=a
    )
    assert (await resp.json())["task_status"] == "queued"  # b will be back
    shown = await get_job(client, job["id"])
    assert shown["status"] == "queued"
    assert await claim(client, a) is None  # a failed it; the task waits for b
    assert await claim(client, b) is not None  # b's hours began


async def test_a_resting_worker_that_falls_silent_goes_offline(client: Client) -> None:
    worker = await register(client, "w")
    await _rest(client, worker, time.time() + 600)
    farm_of(client).sweeps.sweep(now=time.time() + 3600)
    shown = await _worker(client, worker)
    assert shown["status"] == "offline" and shown["resting_until"] is None
