"""A person's control of the farm through the API: job, task and worker actions
(each refused with a reason where it does not apply), regenerate with racing
workers, the blocklist, and the warning for work no worker can take."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core.protocol import JobStatus as J
from coordinator.core.protocol import TaskStatus as T
from coordinator.server import states
from coordinator.server.keys import HUB
from tests.conftest import (
    API,
    AUTH,
    claim,
    farm_of,
    finish,
    get_job,
    get_task,
    register,
    submit_render,
    submit_sleep,
    wait_until,
)

Client = TestClient[Any, Any]
Worker = dict[str, str]


async def post(client: Client, path: str, body: Any = None, *, expect: int = 200) -> Any:
    resp = await client.post(f"{API}{path}", json=body if body is not None else {}, headers=AUTH)
    assert resp.status == expect, await resp.text()
    return await resp.json()


async def refused(client: Client, path: str, body: Any = None, *, status: int = 409) -> str:
    """The error message of a refused action (409 unless told)."""
    error: dict[str, Any] = await post(client, path, body, expect=status)
    assert error["error"], error
    return str(error["error"])


async def upload(client: Client, worker: Worker, task_id: int, frame: int) -> int:
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/frame_{frame:04d}.png?frame={frame}",
        data=f"png {frame}".encode(),
        headers=worker,
    )
    return resp.status


async def render_chunk(client: Client, worker: Worker) -> dict[str, Any]:
    """Claim a render task and finish it with one uploaded frame per frame."""
    task = await claim(client, worker)
    assert task is not None
    for frame in task["payload"]["frames"]:
        assert await upload(client, worker, task["task_id"], frame) == 201
    await finish(client, worker, task["task_id"])
    return task


async def worker_row(client: Client, worker: Worker) -> dict[str, Any]:
    resp = await client.get(f"{API}/workers/{worker['X-Worker-Id']}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    row: dict[str, Any] = await resp.json()
    return row


def frames_of(job: dict[str, Any]) -> list[tuple[list[int], str]]:
    return [(t["frames"], t["status"]) for t in job["tasks"]]


# ================================================================= regenerate
async def test_regenerate_with_new_frames_keeps_finished_ones(
    client: Client, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    job = await submit_render(client, str(out / "frame_####"), frames="1-4", preview=False)
    worker = await register(client)
    first = await render_chunk(client, worker)
    assert first["payload"]["frames"] == [1, 2]

    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"frames": "1-6"}})
    assert after["generation"] == 2
    assert after["regenerated"] == {"tasks": 3, "kept": 1, "stopped": 0}
    assert after["settings"]["frames"] == "1-6"
    assert after["status"] == "active"  # one task already done
    assert '"1-4" → "1-6"' in after["status_reason"]
    assert "1 of 3 tasks kept" in after["status_reason"]
    detail = await get_job(client, job["id"])
    assert frames_of(detail) == [([1, 2], "completed"), ([3, 4], "queued"), ([5, 6], "queued")]
    assert {t["generation"] for t in detail["tasks"]} == {2}
    assert detail["tasks"][0]["activity"].startswith("kept")
    # the kept task owns the frames it stands for; the old tasks stay as history
    outputs = (await (await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)).json())[
        "outputs"
    ]
    assert {o["task_id"] for o in outputs} == {detail["tasks"][0]["id"]}
    resp = await client.get(f"{API}/jobs/{job['id']}?tasks=all", headers=AUTH)
    history = (await resp.json())["tasks"]
    assert [(t["generation"], t["status"]) for t in history][:2] == [
        (1, "completed"),
        (1, "canceled"),
    ]
    assert history[0]["actions"] == []  # nothing to do on an earlier generation's task

    # the rest renders as usual, and the job completes with all six frames
    while (task := await claim(client, worker)) is not None:
        for frame in task["payload"]["frames"]:
            assert await upload(client, worker, task["task_id"], frame) == 201
        await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["status"] == "completed"
    assert sorted(p.name for p in out.iterdir()) == [f"frame_{n:04d}.png" for n in range(1, 7)]


@pytest.mark.parametrize(
    ("body", "kept"),
    [
        ({"settings": {"chunk_size": 1}}, [[1], [2]]),  # finer chunks: frames 1 and 2 are done
        ({"settings": {"chunk_size": 4}}, []),  # 1-4 in one task: 3 and 4 are not done yet
        ({"settings": {"frames": "2-3"}}, []),  # "2-3" is one chunk; 3 is not done
        ({"settings": {"frames": "1-2,9"}}, [[1, 2]]),
        ({"settings": {"camera": "CamB"}}, []),  # renders differently: nothing is kept
        ({"settings": {}, "keep_completed": False}, []),  # asked to render everything again
        ({}, [[1, 2]]),
    ],
)
async def test_regenerate_keeps_only_frames_rendered_the_same_way(
    client: Client, tmp_path: Path, body: dict[str, Any], kept: list[list[int]]
) -> None:
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"), frames="1-4")
    worker = await register(client)
    await render_chunk(client, worker)
    after = await post(client, f"/jobs/{job['id']}/regenerate", body)
    detail = await get_job(client, job["id"])
    assert [t["frames"] for t in detail["tasks"] if t["status"] == "completed"] == kept
    assert after["regenerated"]["kept"] == len(kept)


async def test_regenerate_stops_racing_workers_cleanly(client: Client, tmp_path: Path) -> None:
    job = await submit_render(
        client, str(tmp_path / "out" / "frame_####"), frames="1-4", preview=False
    )
    w1, w2 = await register(client, "w1"), await register(client, "w2")
    old = await claim(client, w1)
    assert old is not None
    control = asyncio.create_task(
        client.get(f"{API}/worker/tasks/{old['task_id']}/control?wait=10", headers=w1)
    )
    await asyncio.sleep(0.1)
    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"chunk_size": 1}})
    assert after["regenerated"] == {"tasks": 4, "kept": 0, "stopped": 1}
    answer = await asyncio.wait_for(control, 3)
    assert await answer.json() == {
        "action": "stop",
        "reason": "the job was regenerated; this task is no longer part of it",
    }
    task_id = old["task_id"]
    for path, body in (("update", {"progress": 0.5}), ("complete", {}), ("fail", {"reason": "x"})):
        resp = await client.post(f"{API}/worker/tasks/{task_id}/{path}", json=body, headers=w1)
        assert resp.status == 409, path
        assert "regenerated" in (await resp.json())["error"], path
    assert await upload(client, w1, task_id, 1) == 409
    outputs = await (await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)).json()
    assert outputs["outputs"] == []  # the late upload did not land
    assert (await worker_row(client, w1))["status"] == "idle"
    # both workers go on with the new tasks
    fresh = [await claim(client, w) for w in (w1, w2)]
    assert all(t is not None and t["payload"]["frames"] in ([1], [2]) for t in fresh)
    assert (await get_task(client, task_id))["status"] == "canceled"


async def test_regenerate_a_sleep_job_with_more_tasks(client: Client) -> None:
    job = await submit_sleep(client, count=2)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"task_count": 3}})
    assert after["task_counts"] == {"queued": 3}  # sleep tasks make no frames: none is kept
    assert after["status"] == "queued"


async def test_regenerate_keeps_a_paused_job_paused_and_completes_a_finished_one(
    client: Client, tmp_path: Path
) -> None:
    job = await submit_render(
        client, str(tmp_path / "out" / "frame_####"), frames="1-2", preview=False
    )
    worker = await register(client)
    await post(client, f"/jobs/{job['id']}/pause")
    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"frames": "1-3"}})
    assert after["status"] == "paused"
    await post(client, f"/jobs/{job['id']}/resume")
    for _ in range(2):
        await render_chunk(client, worker)
    assert (await get_job(client, job["id"]))["status"] == "completed"
    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"chunk_size": 1}})
    assert after["status"] == "completed"  # every frame was already rendered this way
    assert after["regenerated"] == {"tasks": 3, "kept": 3, "stopped": 0}


async def test_regenerate_into_a_new_output_folder_delivers_kept_frames_there(
    client: Client, tmp_path: Path
) -> None:
    job = await submit_render(client, str(tmp_path / "a" / "frame_####"), frames="1-4")
    worker = await register(client)
    await render_chunk(client, worker)
    new = str(tmp_path / "b" / "frame_####")
    after = await post(client, f"/jobs/{job['id']}/regenerate", {"settings": {"output": new}})
    assert after["regenerated"]["kept"] == 1
    # The copies are the sweeper's work, off the event loop (every 0.05 s here).
    wanted = {str(tmp_path / "b" / f"frame_000{n}.png") for n in (1, 2)}

    async def moved() -> bool:
        resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
        return {o["delivered_path"] for o in (await resp.json())["outputs"]} == wanted

    await wait_until(moved, what="the kept frames to be delivered into the new folder")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == [
        "frame_0001.png",
        "frame_0002.png",
    ]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"settings": {"frames": "4-1"}}, "'frames'"),
        ({"settings": {"chunk_size": 0}}, "'chunk_size'"),
        ({"settings": {"colour": "red"}}, "'colour'"),
        ({"settings": ["frames"]}, "'settings'"),
        ({"keep_completed": "yes"}, "'keep_completed'"),
        ({"keep": True}, "keep"),
        ([], "JSON object"),
    ],
)
async def test_regenerate_refuses_bad_requests(
    client: Client, tmp_path: Path, body: Any, words: str
) -> None:
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"), frames="1-4")
    message = await refused(client, f"/jobs/{job['id']}/regenerate", body, status=400)
    assert words in message
    detail = await get_job(client, job["id"])
    assert detail["generation"] == 1 and detail["settings"]["frames"] == "1-4"  # untouched
    assert await refused(client, "/jobs/999/regenerate", {}, status=404)


# =================================================================== priority
async def test_priority_changes_the_order_of_work(client: Client) -> None:
    low = await submit_sleep(client, count=1, name="low", priority=10)
    high = await submit_sleep(client, count=1, name="high", priority=90)
    after = await post(client, f"/jobs/{low['id']}/priority", {"priority": 100})
    assert after["priority"] == 100
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None and task["job_id"] == low["id"]
    assert high["priority"] == 90


@pytest.mark.parametrize(
    "body",
    [
        {"priority": 101},
        {"priority": -1},
        {"priority": "high"},
        {"priority": True},
        {"priority": 5.5},
        {},
        {"prio": 5},
    ],
)
async def test_priority_refuses_bad_values(client: Client, body: dict[str, Any]) -> None:
    job = await submit_sleep(client, count=1)
    assert "priority" in await refused(client, f"/jobs/{job['id']}/priority", body, status=400)


# ============================================================ job actions
async def test_actions_listed_follow_the_state(client: Client) -> None:
    job = await submit_sleep(client, count=2)
    assert job["actions"] == ["cancel", "pause", "regenerate", "priority", "delete"]
    paused = await post(client, f"/jobs/{job['id']}/pause")
    assert "resume" in paused["actions"] and "pause" not in paused["actions"]
    canceled = await post(client, f"/jobs/{job['id']}/cancel")
    assert {"requeue", "requeue-all"} <= set(canceled["actions"])
    assert "cancel" not in canceled["actions"] and "resume" not in canceled["actions"]
    # what the list says applies is what the API accepts, and the rest is refused
    assert "pause" not in canceled["actions"]
    assert "canceled" in await refused(client, f"/jobs/{job['id']}/pause")
    assert "not paused" in await refused(client, f"/jobs/{job['id']}/resume")


@pytest.mark.parametrize(
    ("status", "counts", "blocklisted", "expected"),
    [
        (J.QUEUED, {T.QUEUED: 2}, False, ["cancel", "pause", "regenerate", "priority", "delete"]),
        (
            J.ACTIVE,
            {T.ACTIVE: 1, T.FAILED: 1},
            True,
            ["cancel", "pause", "requeue", "regenerate", "priority", "clear-blocklist", "delete"],
        ),
        (J.PAUSED, {T.QUEUED: 1}, False, ["cancel", "resume", "regenerate", "priority", "delete"]),
        (
            J.COMPLETED,
            {T.COMPLETED: 2},
            False,
            ["requeue-all", "regenerate", "priority", "delete"],
        ),
        (
            J.FAILED,
            {T.FAILED: 1, T.QUEUED: 1},
            False,
            ["cancel", "requeue", "requeue-all", "regenerate", "priority", "delete"],
        ),
        (
            J.CANCELED,
            {T.CANCELED: 2},
            False,
            ["requeue", "requeue-all", "regenerate", "priority", "delete"],
        ),
    ],
)
def test_job_actions_table(
    status: J, counts: dict[T, int], blocklisted: bool, expected: list[str]
) -> None:
    assert states.job_actions(status, counts, blocklisted=blocklisted) == expected


@pytest.mark.parametrize(
    ("current", "counts", "expected"),
    [
        # a person canceled what was left, task by task: the job is canceled, not active
        (J.ACTIVE, {T.COMPLETED: 2, T.CANCELED: 1}, J.CANCELED),
        (J.QUEUED, {T.CANCELED: 2}, J.CANCELED),
        (J.PAUSED, {T.COMPLETED: 1, T.CANCELED: 1}, J.CANCELED),
        (J.ACTIVE, {T.QUEUED: 1, T.CANCELED: 1}, J.QUEUED),
        (J.ACTIVE, {T.FAILED: 1, T.CANCELED: 1}, J.FAILED),
    ],
)
def test_job_status_when_tasks_were_canceled(current: J, counts: dict[T, int], expected: J) -> None:
    assert states.job_status_from_counts(current, counts) == expected
    states.check(states.JOB_TRANSITIONS, "job", current, expected)


# =========================================================== task actions
async def test_requeue_a_running_task_stops_its_worker(client: Client) -> None:
    job = await submit_sleep(client, count=2)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    control = asyncio.create_task(
        client.get(f"{API}/worker/tasks/{task['task_id']}/control?wait=10", headers=worker)
    )
    await asyncio.sleep(0.1)
    after = await post(client, f"/tasks/{task['task_id']}/requeue")
    assert (after["status"], after["attempts"], after["worker_id"]) == ("queued", 0, None)
    assert after["activity"] == "requeued by a person"
    answer = await (await asyncio.wait_for(control, 3)).json()
    assert answer["action"] == "stop"
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={"progress": 1}, headers=worker
    )
    assert resp.status == 409
    assert (await worker_row(client, worker))["status"] == "idle"
    assert (await get_job(client, job["id"]))["task_counts"] == {"queued": 2}


async def test_requeue_the_failed_task_of_a_failed_job(client: Client) -> None:
    job = await submit_sleep(client, count=2, max_attempts=1)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/fail", json={"reason": "boom"}, headers=worker
    )
    assert resp.status == 200
    assert (await get_job(client, job["id"]))["status"] == "failed"
    after = await post(client, f"/tasks/{task['task_id']}/requeue")
    assert after["status"] == "queued" and after["failures"] == []
    assert (await get_job(client, job["id"]))["status"] == "queued"
    assert "queued" in await refused(client, f"/tasks/{task['task_id']}/requeue")


async def test_cancel_tasks_until_none_is_left(client: Client) -> None:
    job = await submit_sleep(client, count=3)
    worker = await register(client)
    tasks = (await get_job(client, job["id"]))["tasks"]
    running = await claim(client, worker)
    assert running is not None and running["task_id"] == tasks[0]["id"]
    await finish(client, worker, running["task_id"])
    assert "completed" in await refused(client, f"/tasks/{tasks[0]['id']}/cancel")
    after = await post(client, f"/tasks/{tasks[1]['id']}/cancel")
    assert after["status"] == "canceled" and after["actions"] == ["requeue"]
    assert (await get_job(client, job["id"]))["status"] == "active"  # one task left
    assert "canceled" in await refused(client, f"/tasks/{tasks[1]['id']}/cancel")
    await post(client, f"/tasks/{tasks[2]['id']}/cancel")
    detail = await get_job(client, job["id"])
    assert detail["status"] == "canceled"
    assert detail["status_reason"] == "every task that was left was canceled"
    await post(client, f"/tasks/{tasks[2]['id']}/requeue")  # and back again
    assert (await get_job(client, job["id"]))["status"] == "active"


async def test_cancel_a_running_task(client: Client) -> None:
    job = await submit_sleep(client, count=2)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    await post(client, f"/tasks/{task['task_id']}/cancel")
    resp = await client.get(f"{API}/worker/tasks/{task['task_id']}/control?wait=0", headers=worker)
    assert (await resp.json())["action"] == "stop"
    nxt = await claim(client, worker)  # the worker is free for the other task
    assert nxt is not None and nxt["job_id"] == job["id"] and nxt["task_id"] != task["task_id"]


async def test_task_actions_refuse_unknown_and_old_tasks(client: Client, tmp_path: Path) -> None:
    assert await refused(client, "/tasks/999/requeue", status=404)
    assert await refused(client, "/tasks/999/cancel", status=404)
    job = await submit_render(client, str(tmp_path / "o" / "frame_####"), frames="1-2")
    old = (await get_job(client, job["id"]))["tasks"][0]
    await post(client, f"/jobs/{job['id']}/regenerate")
    assert "earlier generation" in await refused(client, f"/tasks/{old['id']}/requeue")
    assert "earlier generation" in await refused(client, f"/tasks/{old['id']}/cancel")
    assert "field" not in await post(client, f"/tasks/{old['id']}/cancel", {"x": 1}, expect=400)


# ========================================================= worker actions
async def test_disable_after_the_current_task(client: Client) -> None:
    await submit_sleep(client, count=3)
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    wid = worker["X-Worker-Id"]
    after = await post(client, f"/workers/{wid}/disable")
    assert (after["disabled"], after["status"]) == (True, "busy")
    assert after["actions"] == ["enable", "disable-now"]
    await finish(client, worker, task["task_id"])  # the task still finishes
    assert await claim(client, worker) is None  # but no new one
    assert "disabled already" in await refused(client, f"/workers/{wid}/disable")
    poll = asyncio.create_task(claim(client, worker, wait=10))
    await asyncio.sleep(0.1)
    enabled = await post(client, f"/workers/{wid}/enable")
    assert enabled["disabled"] is False
    assert (await asyncio.wait_for(poll, 3)) is not None  # enabling wakes its long-poll
    assert "not disabled" in await refused(client, f"/workers/{wid}/enable")


async def test_disable_now_hands_the_task_back(client: Client) -> None:
    job = await submit_sleep(client, count=1)
    worker, other = await register(client, "w1"), await register(client, "w2")
    task = await claim(client, worker)
    assert task is not None
    after = await post(client, f"/workers/{worker['X-Worker-Id']}/disable", {"now": True})
    assert (after["status"], after["task"]) == ("idle", None)
    resp = await client.get(f"{API}/worker/tasks/{task['task_id']}/control?wait=0", headers=worker)
    assert (await resp.json())["action"] == "stop"
    again = await claim(client, other)
    assert again is not None and again["task_id"] == task["task_id"]
    assert again["attempt"] == 1  # not counted against the task
    assert (await get_job(client, job["id"]))["status"] == "active"
    assert "'now'" in await refused(
        client, f"/workers/{worker['X-Worker-Id']}/disable", {"now": "yes"}, status=400
    )


async def test_remove_only_an_offline_worker(client: Client) -> None:
    worker = await register(client)
    wid = worker["X-Worker-Id"]
    resp = await client.delete(f"{API}/workers/{wid}", headers=AUTH)
    assert resp.status == 409
    assert "only an offline worker" in (await resp.json())["error"]
    farm_of(client).sweeps.sweep(now=time.time() + 3600)  # it went silent
    assert (await worker_row(client, worker))["actions"] == ["disable", "remove"]
    resp = await client.delete(f"{API}/workers/{wid}", headers=AUTH)
    assert resp.status == 200 and await resp.json() == {"removed": True}
    assert (await client.get(f"{API}/workers/{wid}", headers=AUTH)).status == 404
    assert (await client.delete(f"{API}/workers/{wid}", headers=AUTH)).status == 404
    resp = await client.post(f"{API}/worker/task?wait=0", headers=worker)
    assert resp.status == 401  # its secret is gone with it
    assert await refused(client, "/workers/nobody/enable", status=404)


# ============================================================== blocklist
async def test_blocklist_is_shown_and_can_be_cleared(client: Client) -> None:
    job = await submit_sleep(client, count=4, max_attempts=5)
    bad, good = await register(client, "bad"), await register(client, "good")
    for _ in range(3):
        task = await claim(client, bad)
        assert task is not None
        resp = await client.post(
            f"{API}/worker/tasks/{task['task_id']}/fail", json={"reason": "no GPU"}, headers=bad
        )
        assert (await resp.json())["task_status"] == "queued"
    detail = await get_job(client, job["id"])
    assert detail["blocklist"] == [{"worker_id": bad["X-Worker-Id"], "name": "bad", "failures": 3}]
    assert "clear-blocklist" in detail["actions"]
    assert detail["warning"] == ""  # the good worker can still take it
    assert await claim(client, bad) is None
    wrong = await refused(
        client, f"/jobs/{job['id']}/clear-blocklist", {"worker_id": good["X-Worker-Id"]}
    )
    assert "not blocklisted" in wrong
    after = await post(client, f"/jobs/{job['id']}/clear-blocklist")
    assert after["blocklist"] == [] and "clear-blocklist" not in after["actions"]
    assert await claim(client, bad) is not None  # forgiven
    failures = (await get_task(client, task["task_id"]))["failures"]
    assert [f["reason"] for f in failures] == ["no GPU"]  # history stays
    assert "no blocklisted workers" in await refused(client, f"/jobs/{job['id']}/clear-blocklist")


# ================================================================ warnings
async def test_warning_when_no_online_worker_has_a_new_enough_blender(client: Client) -> None:
    job = await submit_sleep(client, count=1, blender_version="5.0.1")
    assert (await get_job(client, job["id"]))["warning"].startswith("no worker is online")
    old = await register(client, "old", blender="4.2.3")
    detail = await get_job(client, job["id"])
    assert detail["warning"] == (
        "no online worker has Blender 5.0 or newer (they have 4.2.3); start a worker"
        " with a newer Blender to render this job"
    )
    assert detail["status"] == "queued"  # it waits: the right worker may come
    page = await (await client.get(f"{API}/jobs", headers=AUTH)).json()
    assert page["jobs"][0]["warning"] == detail["warning"]
    await post(client, f"/workers/{old['X-Worker-Id']}/disable")
    new = await register(client, "new", blender="5.0.1")
    assert (await get_job(client, job["id"]))["warning"] == ""
    await post(client, f"/workers/{new['X-Worker-Id']}/disable")
    assert "disabled" in (await get_job(client, job["id"]))["warning"]
    await post(client, f"/jobs/{job['id']}/pause")
    # Paused, nothing would start anyway: the warning says that, not the workers' lack
    warning = (await get_job(client, job["id"]))["warning"]
    assert warning.startswith("the job is paused:") and "disabled" not in warning, warning


# ======================================================== filters and events
async def test_globs_ignore_case_for_name_and_submitter(client: Client) -> None:
    await submit_sleep(client, name="SHOT_010", submitter="Ana@Desk")
    await submit_sleep(client, name="shot_020", submitter="bob")
    resp = await client.get(f"{API}/jobs?name=Shot_0?0&sort=id", headers=AUTH)
    assert [j["name"] for j in (await resp.json())["jobs"]] == ["SHOT_010", "shot_020"]
    resp = await client.get(f"{API}/jobs?submitter=ana@*", headers=AUTH)
    assert [j["name"] for j in (await resp.json())["jobs"]] == ["SHOT_010"]


async def test_origin_is_kept_and_lists_exactly_that_origins_jobs(client: Client) -> None:
    # The add-on tags each job with a hash of the farm and the .blend: "this
    # file's jobs" must not be another file's (or another farm's) job 1.
    mine = await submit_sleep(client, name="a", origin="f3a9c2")
    await submit_sleep(client, name="b", origin="f3a9c2x")  # a prefix is not a match
    await submit_sleep(client, name="c")
    assert mine["origin"] == "f3a9c2"
    resp = await client.get(f"{API}/jobs?origin=f3a9c2", headers=AUTH)
    assert [j["name"] for j in (await resp.json())["jobs"]] == ["a"]
    resp = await client.get(f"{API}/jobs?sort=name", headers=AUTH)
    assert [j["origin"] for j in (await resp.json())["jobs"]] == ["f3a9c2", "f3a9c2x", ""]
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "d", "type": "sleep", "origin": "x" * 65, "settings": {}},
    )
    assert resp.status == 400
    assert "origin" in (await resp.json())["error"]
    plan = farm_of(client).ctx.store.all(
        "EXPLAIN QUERY PLAN SELECT id FROM jobs WHERE origin = ? ORDER BY created_at DESC",
        "f3a9c2",
    )
    assert any("INDEX jobs_origin (origin=?)" in r["detail"] for r in plan), [dict(r) for r in plan]


async def test_actions_are_announced_on_the_event_stream(client: Client) -> None:
    job = await submit_sleep(client, count=1)
    resp = await client.get(f"{API}/events", headers=AUTH)
    assert resp.status == 200
    assert await resp.content.readline() == b": connected\n"
    await post(client, f"/jobs/{job['id']}/priority", {"priority": 70})
    lines = [await asyncio.wait_for(resp.content.readline(), 3) for _ in range(3)]
    assert lines[1] == b"event: job\n"
    assert json.loads(lines[2].removeprefix(b"data: ")) == {"type": "job", "id": job["id"]}
    resp.close()


async def test_a_reader_that_falls_behind_is_told_to_resync(client: Client) -> None:
    """Events are not dropped silently: a stream more than EVENT_QUEUE_SIZE events
    behind gets `resync` (reload what you show), then the events after it."""
    from coordinator.server.hub import EVENT_QUEUE_SIZE, Hub

    hub = Hub()
    with hub.subscribe() as queue:
        for i in range(EVENT_QUEUE_SIZE + 5):
            hub.publish("task", id=i)
        events = [queue.get_nowait() for _ in range(queue.qsize())]
    assert events[0] == {"type": "resync"}
    assert events[1:] == [
        {"type": "task", "id": i} for i in range(EVENT_QUEUE_SIZE, EVENT_QUEUE_SIZE + 5)
    ]
    # and through HTTP: a stream that is not read while the farm is busy
    resp = await client.get(f"{API}/events", headers=AUTH)
    assert await resp.content.readline() == b": connected\n"
    app_hub = client.app[HUB]
    for i in range(EVENT_QUEUE_SIZE + 1):  # published faster than the relay can run
        app_hub.publish("task", id=i)
    lines = [await asyncio.wait_for(resp.content.readline(), 3) for _ in range(6)]
    assert b"event: resync\n" in lines
    resp.close()


# ============================================== regenerate on a real render farm
@pytest.mark.blender
@pytest.mark.slow
def test_regenerate_with_more_frames_on_a_real_render_farm(tmp_path: Path) -> None:
    """A real blender-render job rendered by a real worker with Debian's Blender:
    regenerating it with more frames renders only the new ones."""
    from coordinator.core.hashing import sha256_file
    from tests.support.blendgen import DEBIAN_BLENDER, make_scene, png_size
    from tests.support.localfarm import LocalFarm

    scene = make_scene(tmp_path / "shot.blend", frames=(1, 4), samples=4, resolution=(64, 48))
    out = tmp_path / "out"
    with LocalFarm(root=tmp_path / "farm", lease_seconds=5.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("w1", blender=DEBIAN_BLENDER)
        client = farm.client()
        hashes, _ = client.upload_project({"shot.blend": scene})
        job = client.submit(
            {
                "name": "regen",
                "type": "blender-render",
                "blend": "shot.blend",
                "files": hashes,
                "blender_version": "3.4",
                "settings": {
                    "frames": "1-2",
                    "chunk_size": 2,
                    "output": str(out / "frame_####"),
                    "preview": False,  # the subject is the kept frames
                },
            }
        )
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        before = {p.name: sha256_file(p) for p in out.iterdir()}
        assert sorted(before) == ["frame_0001.png", "frame_0002.png"]

        after = client.regenerate_job(job["id"], {"frames": "1-4"})
        assert after["regenerated"] == {"tasks": 2, "kept": 1, "stopped": 0}
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        assert done["generation"] == 2 and done["settings"]["frames"] == "1-4"
        names = sorted(p.name for p in out.iterdir())
        assert names == [f"frame_{n:04d}.png" for n in range(1, 5)]
        assert all(png_size(out / name) == (64, 48) for name in names)
        assert {n: sha256_file(out / n) for n in before} == before  # not rendered again
        tasks = client.job(job["id"], all_generations=True)["tasks"]
        rendered = [(t["generation"], t["frames"], t["attempts"]) for t in tasks if t["attempts"]]
        assert rendered == [(1, [1, 2], 1), (2, [3, 4], 1)]  # frames 1-2 were kept
        outputs = client.outputs(job["id"])
        assert sorted(o["frame"] for o in outputs) == [1, 2, 3, 4]


# ============================================================ dashboard files
async def test_the_dashboard_is_served_without_a_token_and_confined(client: Client) -> None:
    resp = await client.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    assert "script-src 'self'" in resp.headers["Content-Security-Policy"]
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert '<script type="module" src="/ui/app.js">' in await resp.text()
    for name, kind in (("app.js", "text/javascript"), ("style.css", "text/css")):
        resp = await client.get(f"/ui/{name}")
        assert (resp.status, resp.content_type) == (200, kind), name
    for path in (
        "/ui/index.html",  # only scripts, styles and pictures under /ui/
        "/ui/missing.js",
        "/ui/App.js",
        "/ui/..%2Fapp.py",
        "/ui/%2e%2e%2f%2e%2e%2fapp.py",
        "/ui/.hidden.js",
    ):
        resp = await client.get(path)
        assert resp.status == 404, path
        assert "def " not in await resp.text(), path
