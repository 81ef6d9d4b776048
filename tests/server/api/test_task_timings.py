"""Where a task's time went: the claim and the completion by the coordinator's
clock, the stages between as the worker reports them, in the task's JSON
(claimed_at, completed_at, stages) and its log."""

from __future__ import annotations

import time
from typing import Any, get_type_hints

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core import models
from coordinator.server.services.tasks import STAGES
from tests.conftest import API, AUTH, claim, get_task, register, submit_sleep

STAGES_SENT = {"blender_ready": 1.25, "first_sample": 1.5, "last_frame_saved": 2.75}


async def _update(
    client: TestClient[Any, Any], worker: dict[str, str], task_id: int, body: dict[str, Any]
) -> Any:
    return await client.post(f"{API}/worker/tasks/{task_id}/update", json=body, headers=worker)


async def _log(client: TestClient[Any, Any], task_id: int) -> str:
    resp = await client.get(f"{API}/tasks/{task_id}/log", headers=AUTH)
    assert resp.status == 200
    return await resp.text()


def test_the_stages_the_api_takes_are_the_ones_the_model_documents() -> None:
    assert set(STAGES) == set(get_type_hints(models.TaskStages))
    assert {"claimed_at", "completed_at", "stages"} <= set(get_type_hints(models.TaskDetail))


async def test_a_completed_task_shows_where_its_time_went(client: TestClient[Any, Any]) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    before = time.time()
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    resp = await _update(client, worker, task_id, {"stages": {"blender_ready": 1.25}})
    assert resp.status == 200, await resp.text()
    resp = await _update(
        client,
        worker,
        task_id,
        {"log": "Fra:1 Sample 1/16\n", "stages": {"first_sample": 1.5, "last_frame_saved": 2.75}},
    )
    assert resp.status == 200, await resp.text()
    resp = await _update(client, worker, task_id, {"progress": 0.9})  # stages kept
    resp = await client.post(f"{API}/worker/tasks/{task_id}/complete", headers=worker)
    assert resp.status == 200
    got = await get_task(client, task_id)
    assert before <= got["claimed_at"] <= got["completed_at"] <= time.time()
    assert got["stages"] == STAGES_SENT  # uploaded was never reported: left out
    text = await _log(client, task_id)
    assert "Fra:1 Sample 1/16" in text
    line = text.strip().splitlines()[-1]
    assert line.startswith("=== attempt 1: claimed at ")
    assert "Blender ready +1.25 s, first sample +1.50 s, last frame saved +2.75 s, completed +" in (
        line
    )


async def test_a_task_that_reports_nothing_still_has_its_claim_and_completion(
    client: TestClient[Any, Any],
) -> None:
    """... in its JSON; it keeps no log file (what it costs a sleep task)."""
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    await client.post(f"{API}/worker/tasks/{task['task_id']}/complete", headers=worker)
    got = await get_task(client, task["task_id"])
    assert got["completed_at"] >= got["claimed_at"] > 0
    assert got["stages"] == {}
    assert await _log(client, task["task_id"]) == ""


async def test_a_failed_attempt_logs_its_timings_and_the_next_attempt_starts_afresh(
    client: TestClient[Any, Any],
) -> None:
    worker, other = await register(client), await register(client, "w2")
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    await _update(client, worker, task_id, {"stages": STAGES_SENT})
    resp = await client.post(
        f"{API}/worker/tasks/{task_id}/fail", json={"reason": "Blender crashed"}, headers=worker
    )
    assert (await resp.json())["task_status"] == "queued"
    assert "Blender ready +1.25 s" in await _log(client, task_id)
    assert ", failed +" in await _log(client, task_id)
    again = await claim(client, other)
    assert again is not None and again["task_id"] == task_id
    got = await get_task(client, task_id)
    assert got["completed_at"] is None
    assert got["stages"] == {}


@pytest.mark.parametrize(
    "stages",
    [
        [1.0],
        "fast",
        {"warm": 1.0},
        {"blender_ready": -0.5},
        {"blender_ready": True},
        {"blender_ready": "1.0"},
        {"blender_ready": None},
        {"uploaded": 10 * 365 * 86400},
    ],
)
async def test_stages_are_checked(client: TestClient[Any, Any], stages: object) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await _update(client, worker, task["task_id"], {"stages": stages})
    assert resp.status == 400
    body = await resp.json()
    assert body["field"] == "stages", body
    assert (await get_task(client, task["task_id"]))["stages"] == {}
