"""A failure the worker reports as the job's own (`job_fault`): the task fails at
once, whatever attempts are left, and the worker is not held to it. Real app,
real SQLite file."""

from __future__ import annotations

from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server import scheduler
from tests.conftest import API, claim, get_job, get_task, register, submit_sleep

Client = TestClient[Any, Any]

MISSING = "missing files (the scene reads them; the job's project lacks them): tex/wood.png"
NOT_RETRIED = "; not retried: every worker would meet the same"


async def fail(
    client: Client, worker: dict[str, str], task_id: int, body: dict[str, Any]
) -> tuple[int, dict[str, Any]]:
    resp = await client.post(f"{API}/worker/tasks/{task_id}/fail", json=body, headers=worker)
    return resp.status, await resp.json()


async def test_a_job_fault_fails_the_task_after_one_attempt_and_blames_nobody(
    client: Client,
) -> None:
    first, second = await register(client, "w1"), await register(client, "w2")
    job = await submit_sleep(client, count=2, max_attempts=3)
    task = await claim(client, first)
    assert task is not None
    status, body = await fail(
        client, first, task["task_id"], {"reason": MISSING, "log": "[runner]\n", "job_fault": True}
    )
    assert (status, body) == (200, {"task_status": "failed"})

    detail = await get_task(client, task["task_id"])
    assert detail["status"] == "failed"
    assert detail["attempts"] == 1
    assert [(f["reason"], f["blamed"]) for f in detail["failures"]] == [
        (MISSING + NOT_RETRIED, False)
    ]
    job_now = await get_job(client, job["id"])
    assert job_now["status"] == "failed"
    assert job_now["status_reason"] == f"task '{detail['name']}' failed: {MISSING}{NOT_RETRIED}"
    assert job_now["blocklist"] == []
    assert await claim(client, second) is None  # a failed job hands out nothing


async def test_a_job_fault_does_not_count_toward_the_blocklist(client: Client) -> None:
    """A worker one plain failure short of the blocklist meets the job's own fault:
    it stays off the blocklist (the fault would have made it the third)."""
    worker, _other = await register(client, "w1"), await register(client, "w2")
    job = await submit_sleep(client, count=scheduler.BLOCKLIST_THRESHOLD, max_attempts=3)
    for _ in range(scheduler.BLOCKLIST_THRESHOLD - 1):
        task = await claim(client, worker)
        assert task is not None
        assert await fail(client, worker, task["task_id"], {"reason": "GPU lost"}) == (
            200,
            {"task_status": "queued"},
        )
    task = await claim(client, worker)
    assert task is not None
    status, body = await fail(
        client, worker, task["task_id"], {"reason": MISSING, "job_fault": True}
    )
    assert (status, body) == (200, {"task_status": "failed"})
    job_now = await get_job(client, job["id"])
    assert job_now["status"] == "failed"
    assert job_now["blocklist"] == []


async def test_a_fail_without_the_flag_is_retried_and_blamed_as_before(client: Client) -> None:
    first, second = await register(client, "w1"), await register(client, "w2")
    job = await submit_sleep(client, count=1, max_attempts=3)
    task = await claim(client, first)
    assert task is not None
    status, body = await fail(
        client, first, task["task_id"], {"reason": "out of memory", "job_fault": False}
    )
    assert (status, body) == (200, {"task_status": "queued"})
    detail = await get_task(client, task["task_id"])
    assert [(f["reason"], f["blamed"]) for f in detail["failures"]] == [("out of memory", True)]
    assert await claim(client, first) is None  # never the task it failed
    again = await claim(client, second)
    assert again is not None and again["task_id"] == task["task_id"] and again["attempt"] == 2
    assert (await get_job(client, job["id"]))["status"] == "active"


async def test_a_worker_cannot_flag_a_task_it_does_not_hold(client: Client) -> None:
    holder, rogue = await register(client, "w1"), await register(client, "rogue")
    job = await submit_sleep(client, count=1, max_attempts=3)
    task = await claim(client, holder)
    assert task is not None
    status, body = await fail(
        client, rogue, task["task_id"], {"reason": "every worker fails this", "job_fault": True}
    )
    assert status == 409, body
    detail = await get_task(client, task["task_id"])
    assert detail["status"] == "active" and detail["failures"] == []
    assert (await get_job(client, job["id"]))["status"] == "active"


@pytest.mark.parametrize("value", ["yes", 1, None, []])
async def test_job_fault_must_be_true_or_false(client: Client, value: Any) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    status, body = await fail(client, worker, task["task_id"], {"reason": "x", "job_fault": value})
    assert status == 400
    assert body["field"] == "job_fault"
    assert "true or false" in body["error"]
    assert (await get_task(client, task["task_id"]))["status"] == "active"


# What the worker says first (the files to send) and how Blender ended last.
ENDED = " (Blender exited with code 1; frames 1-24 were not written)"
LONG = MISSING + "".join(f", tex/t{n}.png (image 't{n}')" for n in range(60)) + ENDED


async def test_a_long_reason_keeps_its_head_its_tail_and_the_verdict(client: Client) -> None:
    """The task's activity (its dashboard row) is cut to 500 characters: the files
    to send lead, how Blender ended and 'not retried' are still there."""
    worker = await register(client, "w1")
    job = await submit_sleep(client, count=1, max_attempts=3)
    task = await claim(client, worker)
    assert task is not None and len(LONG) > 1000
    body = {"reason": LONG, "job_fault": True}
    assert await fail(client, worker, task["task_id"], body) == (200, {"task_status": "failed"})

    detail = await get_task(client, task["task_id"])
    assert [f["reason"] for f in detail["failures"]] == [LONG + NOT_RETRIED]
    activity = detail["activity"]
    assert len(activity) == 500, activity
    assert activity.startswith(MISSING + ", tex/t0.png (image 't0')")
    assert activity.endswith(ENDED + NOT_RETRIED) and " … " in activity
    job_now = await get_job(client, job["id"])
    assert job_now["status_reason"] == f"task '{detail['name']}' failed: {LONG}{NOT_RETRIED}"


async def test_the_farms_own_ending_survives_the_cut_of_a_plain_failure(client: Client) -> None:
    worker = await register(client, "w1")  # the only worker: none left once it fails
    await submit_sleep(client, count=1, max_attempts=3)
    task = await claim(client, worker)
    assert task is not None
    assert await fail(client, worker, task["task_id"], {"reason": LONG}) == (
        200,
        {"task_status": "failed"},
    )
    activity = (await get_task(client, task["task_id"]))["activity"]
    assert len(activity) == 500 and activity.startswith(MISSING)
    assert activity.endswith(ENDED + " (and no other worker is left to try it)"), activity
    assert NOT_RETRIED not in activity
