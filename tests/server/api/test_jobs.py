"""The artist's side of the API: submit, find, inspect and act on jobs."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import (
    API,
    AUTH,
    claim,
    finish,
    get_job,
    register,
    submit_render,
    submit_sleep,
)

Client = TestClient[Any, Any]


async def list_jobs(client: Client, query: str = "") -> dict[str, Any]:
    resp = await client.get(f"{API}/jobs{query}", headers=AUTH)
    assert resp.status == 200, await resp.text()
    page: dict[str, Any] = await resp.json()
    return page


def names(page: dict[str, Any]) -> list[str]:
    return [job["name"] for job in page["jobs"]]


async def action(client: Client, job_id: int, name: str, **body: Any) -> Any:
    return await client.post(f"{API}/jobs/{job_id}/{name}", json=body, headers=AUTH)


# ------------------------------------------------------------------ submit
async def test_submit_returns_the_queued_job(client: Client) -> None:
    job = await submit_sleep(client, count=3, seconds=0.5, name="nap", priority=70)
    assert job["id"] >= 1
    assert (job["name"], job["type"], job["status"], job["priority"]) == (
        "nap",
        "sleep",
        "queued",
        70,
    )
    assert job["settings"] == {"task_count": 3, "seconds": 0.5, "uneven": 0.0}
    assert job["task_counts"] == {"queued": 3}
    assert job["progress"] == 0
    assert job["status_reason"] == ""
    assert "tasks" not in job


async def test_submit_unknown_type_is_a_400_naming_the_known_ones(client: Client) -> None:
    resp = await client.post(
        f"{API}/jobs", headers=AUTH, json={"name": "x", "type": "blender-rendr"}
    )
    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert "blender-render" in error["error"]
    assert error["field"] == "type"


async def test_submit_names_every_bad_setting(client: Client) -> None:
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "x", "type": "sleep", "settings": {"task_count": 0, "seconds": -1}},
    )
    assert resp.status == 400
    error = await resp.json()
    assert "'task_count'" in error["error"] and "'seconds'" in error["error"]


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"type": "sleep"}, "'name'"),
        ({"name": "x"}, "'type'"),
        ({"name": "x", "type": "sleep", "priority": -1}, "'priority'"),
        ({"name": "x", "type": "sleep", "priority": 101}, "'priority'"),
        ({"name": "x", "type": "sleep", "priority": 10**30}, "'priority'"),
        ({"name": "x", "type": "sleep", "priority": 5.5}, "'priority'"),
        ({"name": "x", "type": "sleep", "max_attempts": 0}, "'max_attempts'"),
        ({"name": "x", "type": "sleep", "deliver": "perhaps"}, "'deliver'"),
        ({"name": "x", "type": "sleep", "blender_version": "latest"}, "'blender_version'"),
        ({"name": "x", "type": "sleep", "urgent": True}, "'urgent'"),
        ({"name": "x" * 201, "type": "sleep"}, "'name'"),
        ({"name": "x", "type": "sleep", "settings": [1]}, "settings"),
        ({"name": "x", "type": "sleep", "files": []}, "'files'"),
        ({"name": "x", "type": "blender-render", "settings": {}}, "'frames'"),
    ],
)
async def test_submit_refuses_bad_bodies(client: Client, body: dict[str, Any], words: str) -> None:
    resp = await client.post(f"{API}/jobs", headers=AUTH, json=body)
    assert resp.status == 400, await resp.text()
    assert words in (await resp.json())["error"]


async def test_render_job_needs_its_blend_among_its_files(client: Client) -> None:
    settings = {"frames": "1-2", "output": "/tmp/never/frame_####"}
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "x", "type": "blender-render", "settings": settings},
    )
    assert resp.status == 400
    assert (await resp.json())["field"] == "blend"
    resp = await client.post(
        f"{API}/jobs",
        headers=AUTH,
        json={"name": "x", "type": "blender-render", "blend": "a.blend", "settings": settings},
    )
    assert resp.status == 400
    assert "not one of the job's files" in (await resp.json())["error"]


async def test_render_job_tasks_and_assignment(client: Client, tmp_path: Path) -> None:
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"), frames="1-5")
    detail = await get_job(client, job["id"])
    assert [t["frames"] for t in detail["tasks"]] == [[1, 2], [3, 4], [5], []]
    assert [t["name"] for t in detail["tasks"]] == [
        "frames 1-2",
        "frames 3-4",
        "frames 5",
        "preview video",  # on by default, after the frames
    ]
    worker = await register(client)
    task = await claim(client, worker)
    assert task is not None
    assert task["blend"] == "shot.blend"
    assert set(task["files"]) == {"shot.blend"}
    assert task["payload"]["frames"] == [1, 2]
    assert task["payload"]["output_name"] == "frame_####"


# -------------------------------------------------------------------- list
async def test_list_filters(client: Client) -> None:
    await submit_sleep(client, name="Shot_010 lighting", submitter="ana")
    await submit_sleep(client, name="shot_020 anim", submitter="bob")
    await submit_sleep(client, name="Test render", submitter="ana@desk-3")
    assert names(await list_jobs(client, "?sort=id")) == [
        "Shot_010 lighting",
        "shot_020 anim",
        "Test render",
    ]
    # a substring ignores case
    assert names(await list_jobs(client, "?name=SHOT&sort=id")) == [
        "Shot_010 lighting",
        "shot_020 anim",
    ]
    # a glob is anchored and, like a substring, ignores case
    assert names(await list_jobs(client, "?name=shot_*&sort=id")) == [
        "Shot_010 lighting",
        "shot_020 anim",
    ]
    assert names(await list_jobs(client, "?name=*RENDER")) == ["Test render"]
    assert names(await list_jobs(client, "?name=*render*")) == ["Test render"]
    assert names(await list_jobs(client, "?name=render")) == ["Test render"]
    assert names(await list_jobs(client, "?name=S?ot_0[1]0*")) == ["Shot_010 lighting"]
    assert names(await list_jobs(client, "?name=shot")) != []
    assert names(await list_jobs(client, "?name=shot_0")) != []
    assert names(await list_jobs(client, "?name=*lighting")) == ["Shot_010 lighting"]
    assert names(await list_jobs(client, "?name=lighting*")) == []  # anchored at the start
    assert names(await list_jobs(client, "?submitter=ana&sort=id")) == [
        "Shot_010 lighting",
        "Test render",
    ]
    assert names(await list_jobs(client, "?submitter=ana")) == ["Test render", "Shot_010 lighting"]
    assert names(await list_jobs(client, "?submitter=ana*desk*")) == ["Test render"]
    assert names(await list_jobs(client, "?type=sleep,blender-render&name=anim")) == [
        "shot_020 anim"
    ]
    assert (await list_jobs(client, "?type=blender-render"))["total"] == 0


async def test_list_status_filter_takes_several(client: Client) -> None:
    worker = await register(client)
    done = await submit_sleep(client, count=1, name="done")
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    canceled = await submit_sleep(client, count=1, name="canceled")
    assert (await action(client, canceled["id"], "cancel")).status == 200
    await submit_sleep(client, count=1, name="waiting")
    assert names(await list_jobs(client, "?status=queued")) == ["waiting"]
    assert names(await list_jobs(client, "?status=completed,canceled&sort=id")) == [
        "done",
        "canceled",
    ]
    # the same, as a repeated parameter (what most HTTP clients send for a list)
    assert names(await list_jobs(client, "?status=completed&status=canceled&sort=id")) == [
        "done",
        "canceled",
    ]
    assert done["id"] < canceled["id"]


async def test_list_after_and_before(client: Client) -> None:
    await submit_sleep(client, name="early")
    await asyncio.sleep(0.02)
    cut = time.time()
    await asyncio.sleep(0.02)
    await submit_sleep(client, name="late")
    assert names(await list_jobs(client, f"?after={cut}")) == ["late"]
    assert names(await list_jobs(client, f"?before={cut}")) == ["early"]
    iso = datetime.fromtimestamp(cut).isoformat()
    assert names(await list_jobs(client, f"?after={iso}")) == ["late"]
    assert names(await list_jobs(client, f"?after={cut - 3600}&before={cut}")) == ["early"]
    today = datetime.fromtimestamp(cut).date().isoformat()
    assert (await list_jobs(client, f"?after={today}"))["total"] == 2


async def test_list_sort_and_paging(client: Client) -> None:
    for i, priority in enumerate([30, 90, 60, 90, 10]):
        await submit_sleep(client, count=1, name=f"job {i}", priority=priority)
    assert names(await list_jobs(client, "?sort=-priority")) == [
        "job 3",
        "job 1",
        "job 2",
        "job 0",
        "job 4",
    ]
    assert names(await list_jobs(client, "?sort=priority")) == [
        "job 4",
        "job 0",
        "job 2",
        "job 1",
        "job 3",
    ]
    assert names(await list_jobs(client, "?sort=name"))[0] == "job 0"
    assert names(await list_jobs(client)) == [f"job {i}" for i in (4, 3, 2, 1, 0)]  # newest first
    page = await list_jobs(client, "?sort=id&limit=2&offset=2")
    assert names(page) == ["job 2", "job 3"]
    assert (page["total"], page["limit"], page["offset"]) == (5, 2, 2)
    page = await list_jobs(client, "?sort=id&limit=2&offset=4")
    assert names(page) == ["job 4"] and page["total"] == 5
    page = await list_jobs(client, "?offset=50")
    assert page["jobs"] == [] and page["total"] == 5
    page = await list_jobs(client, "?status=queued&limit=1")
    assert page["total"] == 5 and len(page["jobs"]) == 1


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?status=sleeping", "status"),
        ("?sort=colour", "sort"),
        ("?sort=", "sort"),
        ("?limit=0", "limit"),
        ("?limit=501", "limit"),
        ("?limit=ten", "limit"),
        ("?limit=" + "9" * 5000, "limit"),
        ("?offset=-1", "offset"),
        ("?after=yesterday", "after"),
        ("?after=0001-01-01", "after"),
        ("?before=nan", "before"),
        ("?after=inf", "after"),
        ("?after=1e999", "after"),
        ("?colour=red", "colour"),
    ],
)
async def test_list_refuses_bad_filters(client: Client, query: str, field: str) -> None:
    resp = await client.get(f"{API}/jobs{query}", headers=AUTH)
    assert resp.status == 400, await resp.text()
    assert field in (await resp.json())["error"]


# ----------------------------------------------------------------- inspect
async def test_get_job_with_tasks_and_progress(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=4)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={"progress": 0.5}, headers=worker
    )
    assert resp.status == 200
    detail = await get_job(client, job["id"])
    assert detail["status"] == "active"
    assert detail["progress"] == pytest.approx(1.5 / 4)
    assert detail["task_counts"] == {"completed": 1, "active": 1, "queued": 2}
    assert [t["status"] for t in detail["tasks"]] == ["completed", "active", "queued", "queued"]
    assert [t["index"] for t in detail["tasks"]] == [0, 1, 2, 3]
    assert detail["tasks"][1]["progress"] == 0.5
    resp = await client.get(f"{API}/jobs/{job['id']}?tasks=0", headers=AUTH)
    assert "tasks" not in await resp.json()


async def test_tasks_a_page_at_a_time(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=7)
    for _ in range(2):
        task = await claim(client, worker)
        assert task is not None
        await finish(client, worker, task["task_id"])
    base = f"{API}/jobs/{job['id']}/tasks"

    async def page(query: str) -> dict[str, Any]:
        resp = await client.get(f"{base}{query}", headers=AUTH)
        assert resp.status == 200, await resp.text()
        result: dict[str, Any] = await resp.json()
        return result

    first, second = await page("?limit=3"), await page("?limit=3&offset=3")
    assert [t["index"] for t in first["tasks"] + second["tasks"]] == [0, 1, 2, 3, 4, 5]
    assert (first["total"], first["limit"], first["offset"]) == (7, 3, 0)
    assert [t["index"] for t in (await page("?offset=6"))["tasks"]] == [6]
    done = await page("?status=completed")
    assert done["total"] == 2 and {t["status"] for t in done["tasks"]} == {"completed"}
    both = await page("?status=completed&status=queued")  # repeated = comma-separated
    assert both["total"] == 7
    # the same rows GET /jobs/{id} lists, field for field
    detail = await get_job(client, job["id"])
    assert (await page(""))["tasks"] == detail["tasks"]
    # earlier generations on request only
    resp = await client.post(f"{API}/jobs/{job['id']}/regenerate", json={}, headers=AUTH)
    assert resp.status == 200, await resp.text()
    assert (await page(""))["total"] == 7
    everything = await page("?generation=all&limit=1000")
    assert everything["total"] == 14
    assert {t["generation"] for t in everything["tasks"]} == {1, 2}
    assert all(t["actions"] == [] for t in everything["tasks"] if t["generation"] == 1)


@pytest.mark.parametrize(
    ("query", "words"),
    [
        ("?status=done", "unknown task status 'done'; use queued, active"),
        ("?limit=0", "'limit' must be between 1 and 1000"),
        ("?limit=1001", "'limit' must be between 1 and 1000"),
        ("?offset=-1", "'offset' must be between"),
        ("?offset=x", "'offset' must be a whole number"),
        ("?generation=2", "'generation' must be 'current' or 'all'"),
    ],
)
async def test_task_pages_refuse_bad_queries(client: Client, query: str, words: str) -> None:
    job = await submit_sleep(client, count=1)
    resp = await client.get(f"{API}/jobs/{job['id']}/tasks{query}", headers=AUTH)
    assert resp.status == 400
    assert words in (await resp.json())["error"]
    resp = await client.get(f"{API}/jobs/999/tasks", headers=AUTH)
    assert resp.status == 404


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/jobs/999", 404),
        ("/jobs/abc", 400),
        ("/jobs/0", 400),
        ("/jobs/-1", 400),
        ("/jobs/99999999999999999999999", 400),
        ("/tasks/999", 404),
        ("/tasks/999/log", 404),
        ("/tasks/x/log", 400),
        ("/jobs/999/outputs", 404),
        ("/jobs/999/outputs/a.png", 404),
    ],
)
async def test_unknown_ids(client: Client, path: str, status: int) -> None:
    resp = await client.get(f"{API}{path}", headers=AUTH)
    assert resp.status == status
    assert (await resp.json())["error"]


async def test_task_log_of_a_task_that_never_ran_is_empty(client: Client) -> None:
    job = await get_job(client, (await submit_sleep(client, count=1))["id"])
    resp = await client.get(f"{API}/tasks/{job['tasks'][0]['id']}/log", headers=AUTH)
    assert resp.status == 200
    assert await resp.text() == ""
    assert resp.content_type == "text/plain"


async def test_job_types_catalogue(client: Client) -> None:
    resp = await client.get(f"{API}/job-types", headers=AUTH)
    catalogue = {t["name"]: t for t in (await resp.json())["job_types"]}
    frames = next(s for s in catalogue["blender-render"]["settings"] if s["name"] == "frames")
    assert frames["required"] is True


# ----------------------------------------------------------------- actions
async def test_cancel(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=3)
    task = await claim(client, worker)
    assert task is not None
    resp = await action(client, job["id"], "cancel")
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "canceled"
    assert body["status_reason"] == "canceled by a person"
    assert body["task_counts"] == {"canceled": 3}
    assert await claim(client, worker) is None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={}, headers=worker
    )
    assert resp.status == 409
    resp = await client.get(f"{API}/workers", headers=AUTH)
    assert (await resp.json())["workers"][0]["status"] == "idle"
    assert (await action(client, job["id"], "cancel")).status == 200  # again: nothing to do


async def test_cancel_a_completed_job_is_refused(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    resp = await action(client, job["id"], "cancel")
    assert resp.status == 409
    assert "completed" in (await resp.json())["error"]
    assert (await action(client, job["id"], "pause")).status == 409
    assert (await action(client, job["id"], "resume")).status == 409


async def test_pause_holds_queued_tasks_and_resume_releases_them(client: Client) -> None:
    worker, other = await register(client, "w1"), await register(client, "w2")
    job = await submit_sleep(client, count=3)
    running = await claim(client, worker)
    assert running is not None
    resp = await action(client, job["id"], "pause")
    assert resp.status == 200
    assert (await resp.json())["status"] == "paused"
    assert await claim(client, other) is None  # queued tasks are held back
    await finish(client, worker, running["task_id"])  # the running one finishes
    assert (await get_job(client, job["id"]))["status"] == "paused"

    poll = asyncio.create_task(claim(client, other, wait=10))
    await asyncio.sleep(0.1)
    resp = await action(client, job["id"], "resume")
    assert resp.status == 200
    assert (await resp.json())["status"] == "active"  # one task already done
    task = await asyncio.wait_for(poll, 3)  # resuming wakes the idle worker
    assert task is not None and task["job_id"] == job["id"]
    assert (await action(client, job["id"], "resume")).status == 409  # not paused any more


async def test_a_paused_job_whose_work_finishes_completes(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    assert (await action(client, job["id"], "pause")).status == 200
    await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["status"] == "completed"


async def test_requeue_failed_only(client: Client) -> None:
    worker = await register(client, "w1")
    job = await submit_sleep(client, count=3, max_attempts=1)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/fail", json={"reason": "bad"}, headers=worker
    )
    assert (await resp.json())["task_status"] == "failed"
    detail = await get_job(client, job["id"])
    assert detail["status"] == "failed"
    assert [t["status"] for t in detail["tasks"]] == ["completed", "failed", "queued"]

    resp = await action(client, job["id"], "requeue")  # which=failed by default
    assert resp.status == 200
    body = await resp.json()
    assert body["status"] == "active"  # one task already completed
    assert body["status_reason"] == ""
    detail = await get_job(client, job["id"])
    assert [t["status"] for t in detail["tasks"]] == ["completed", "queued", "queued"]
    assert detail["tasks"][1]["attempts"] == 0
    retried = await claim(client, worker)  # forgiven: the same worker may try again
    assert retried is not None and retried["task_id"] == task["task_id"]
    resp = await action(client, job["id"], "requeue", which="failed")
    assert resp.status == 409  # nothing failed now
    assert "has no failed or canceled tasks to requeue" in (await resp.json())["error"]


async def test_requeue_all_of_a_completed_job(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=2)
    for _ in range(2):
        task = await claim(client, worker)
        assert task is not None
        await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["status"] == "completed"
    assert (await action(client, job["id"], "requeue")).status == 409  # no failed ones
    resp = await action(client, job["id"], "requeue", which="all")
    assert resp.status == 200
    assert (await resp.json())["task_counts"] == {"queued": 2}
    assert (await get_job(client, job["id"]))["status"] == "queued"
    assert await claim(client, worker) is not None


async def test_requeue_all_of_a_rendering_job_is_refused(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=2)
    assert await claim(client, worker) is not None
    resp = await action(client, job["id"], "requeue", which="all")
    assert resp.status == 409
    assert "cancel or pause" in (await resp.json())["error"]


async def test_requeue_a_canceled_job(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=2)
    assert (await action(client, job["id"], "cancel")).status == 200
    resp = await action(client, job["id"], "requeue")
    assert resp.status == 200
    assert (await resp.json())["status"] == "queued"
    assert await claim(client, worker) is not None


@pytest.mark.parametrize("body", [{"which": "some"}, {"which": 3}, {"which": None}])
async def test_requeue_refuses_bad_which(client: Client, body: dict[str, Any]) -> None:
    job = await submit_sleep(client, count=1)
    resp = await client.post(f"{API}/jobs/{job['id']}/requeue", json=body, headers=AUTH)
    assert resp.status == 400
    assert "'which'" in (await resp.json())["error"]


async def test_delete_removes_everything_and_stops_its_worker(
    client: Client, tmp_path: Path
) -> None:
    worker = await register(client)
    job = await submit_render(client, str(tmp_path / "out" / "frame_####"), frames="1-2")
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    resp = await client.post(
        f"{API}/worker/tasks/{task_id}/update", json={"log": "rendering\n"}, headers=worker
    )
    assert resp.status == 200
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/frame_0001.png", data=b"png", headers=worker
    )
    assert resp.status == 201
    job_dir = tmp_path / "farm" / "jobs" / str(job["id"])
    assert (job_dir / "outputs" / "frame_0001.png").is_file()
    assert (job_dir / "logs").is_dir()

    control = asyncio.create_task(
        client.get(f"{API}/worker/tasks/{task_id}/control?wait=10", headers=worker)
    )
    await asyncio.sleep(0.1)
    resp = await client.delete(f"{API}/jobs/{job['id']}", headers=AUTH)
    assert resp.status == 200
    assert await resp.json() == {"deleted": True}
    answer = await asyncio.wait_for(control, 2)
    assert await answer.json() == {"action": "stop", "reason": "the job was deleted"}

    assert not job_dir.exists()
    assert (tmp_path / "out" / "frame_0001.png").read_bytes() == b"png"  # delivered frames stay
    assert (await client.get(f"{API}/jobs/{job['id']}", headers=AUTH)).status == 404
    assert (await client.get(f"{API}/tasks/{task_id}", headers=AUTH)).status == 404
    for path, body in (("update", {"progress": 0.5}), ("complete", {}), ("fail", {"reason": "x"})):
        resp = await client.post(f"{API}/worker/tasks/{task_id}/{path}", json=body, headers=worker)
        assert resp.status == 409, path
        assert "deleted" in (await resp.json())["error"]
    resp = await client.put(
        f"{API}/worker/tasks/{task_id}/outputs/frame_0002.png", data=b"png", headers=worker
    )
    assert resp.status == 409
    assert not job_dir.exists()  # the late upload did not bring the folder back
    resp = await client.get(f"{API}/workers", headers=AUTH)
    assert (await resp.json())["workers"][0]["status"] == "idle"
    assert (await client.delete(f"{API}/jobs/{job['id']}", headers=AUTH)).status == 404
