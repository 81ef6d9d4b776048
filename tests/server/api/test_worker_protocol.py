"""The worker protocol end to end on a real app and SQLite file: register,
long-poll, report, upload, finish, and what happens when workers vanish."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.core.protocol import TaskSpec
from coordinator.server import job_types
from coordinator.server.job_types import JobType
from coordinator.server.job_types.schema import JSON, Setting
from tests.conftest import (
    API,
    AUTH,
    claim,
    farm_of,
    finish,
    get_job,
    get_task,
    register,
    sha,
    submit_render,
    submit_sleep,
    wait_until,
)

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]


# ---------------------------------------------------------------- register
async def test_register_returns_id_secret_and_lease(client: Client) -> None:
    resp = await client.post(
        f"{API}/workers",
        headers=AUTH,
        json={
            "name": "render-01",
            "host": "render-01.lan",
            "blender_version": "4.2.3",
            "devices": ["CPU", "CUDA:0"],
            "tags": ["gpu"],
        },
    )
    assert resp.status == 201
    body = await resp.json()
    assert set(body) == {"worker_id", "secret", "lease_seconds"}
    assert len(body["secret"]) >= 32
    resp = await client.get(f"{API}/workers", headers=AUTH)
    (worker,) = (await resp.json())["workers"]
    assert worker["id"] == body["worker_id"]
    assert worker["status"] == "idle"
    assert worker["devices"] == ["CPU", "CUDA:0"]
    assert "secret" not in worker and "secret_hash" not in worker


async def test_register_needs_the_farm_token(client: Client) -> None:
    resp = await client.post(f"{API}/workers", json={"name": "w", "blender_version": "4.2"})
    assert resp.status == 401


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"blender_version": "4.2"}, "name"),
        ({"name": "w"}, "blender_version"),
        ({"name": "w", "blender_version": "four"}, "blender_version"),
        ({"name": "w", "blender_version": "9" * 30 + ".1"}, "blender_version"),
        ({"name": "w", "blender_version": "4.2000"}, "blender_version"),
        ({"name": "w", "blender_version": "-4.2"}, "blender_version"),
        ({"name": "w" * 201, "blender_version": "4.2"}, "name"),
        ({"name": "w", "blender_version": "4.2", "devices": "CPU"}, "devices"),
        ({"name": "w", "blender_version": "4.2", "tags": [1]}, "tags"),
        ({"name": "w", "blender_version": "4.2", "colour": "red"}, "colour"),
    ],
)
async def test_register_refuses_bad_bodies(client: Client, body: JSON, field: str) -> None:
    resp = await client.post(f"{API}/workers", headers=AUTH, json=body)
    assert resp.status == 400, await resp.text()
    error = await resp.json()
    assert field in error["error"]


# --------------------------------------------------------------- long-poll
async def test_idle_long_poll_gets_a_new_job_at_once(client: Client) -> None:
    worker = await register(client)
    poll = asyncio.create_task(claim(client, worker, wait=10))
    await asyncio.sleep(0.2)
    assert not poll.done()
    submitted = time.monotonic()
    job = await submit_sleep(client, count=1)
    task = await asyncio.wait_for(poll, 5)
    waited = time.monotonic() - submitted
    assert task is not None and task["job_id"] == job["id"]
    assert waited < 2.0, f"the idle worker waited {waited:.2f} s for a new job's task"


async def test_long_poll_answers_204_when_nothing_comes(client: Client) -> None:
    worker = await register(client)
    started = time.monotonic()
    assert await claim(client, worker, wait=0.2) is None
    assert 0.15 < time.monotonic() - started < 2


async def test_assignment_has_what_the_worker_needs(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=1, seconds=0.5, name="nap")
    task = await claim(client, worker)
    assert task == {
        "task_id": task["task_id"] if task else None,
        "job_id": job["id"],
        "job_name": "nap",
        "kind": "sleep",
        "payload": {"seconds": 0.5},
        "attempt": 1,
        "lease_seconds": 5.0,
        "blend": None,
        "files": {},
        "inputs": {},
    }
    job_now = await get_job(client, job["id"])
    assert job_now["status"] == "active"
    assert job_now["tasks"][0]["worker_id"] == worker["X-Worker-Id"]


# ------------------------------------------------------- progress and logs
async def test_progress_activity_and_log(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=2)
    task = await claim(client, worker)
    assert task is not None
    task_id = task["task_id"]
    for update in (
        {"progress": 0.25, "activity": "Sample 4/16", "log": "Fra:1 Mem:12M\n"},
        {"log": "Fra:1 Mem:13M … café\n"},
        {"progress": 1},
    ):
        resp = await client.post(
            f"{API}/worker/tasks/{task_id}/update", json=update, headers=worker
        )
        assert resp.status == 200, await resp.text()
        assert await resp.json() == {"action": "continue"}
    detail = await get_task(client, task_id)
    assert detail["progress"] == 1
    assert detail["activity"] == "Sample 4/16"
    resp = await client.get(f"{API}/tasks/{task_id}/log", headers=AUTH)
    assert resp.status == 200
    text = await resp.text()
    assert "Fra:1 Mem:12M\nFra:1 Mem:13M … café\n" in text
    assert "attempt 1 on worker w1" in text
    resp = await client.get(f"{API}/tasks/{task_id}/log?tail=5", headers=AUTH)
    assert await resp.text() == "afé\n"  # the last 5 bytes; a cut character is replaced
    job_now = await get_job(client, job["id"])
    assert job_now["progress"] == 0.5  # one of two tasks at 100 %


@pytest.mark.parametrize("tail", ["0", "-5", str((16 << 20) + 1)])
async def test_a_log_tail_out_of_range_is_refused_with_the_range(client: Client, tail: str) -> None:
    """Every whole-number query value is checked alike: out of range is a 400
    that names the range, never silently clamped."""
    await submit_sleep(client, count=1)
    task = await claim(client, await register(client))
    assert task is not None
    resp = await client.get(f"{API}/tasks/{task['task_id']}/log?tail={tail}", headers=AUTH)
    assert resp.status == 400
    body = await resp.json()
    assert body == {"error": f"'tail' must be between 1 and {16 << 20}", "field": "tail"}


@pytest.mark.parametrize(
    "body",
    [
        {"progress": 1.5},
        {"progress": -0.1},
        {"progress": "half"},
        {"progress": True},
        {"activity": 3},
        {"activity": "x" * 501},
        {"log": ["line"]},
        {"log": "x" * (256 * 1024 + 1)},
        {"colour": "red"},
        [],
    ],
)
async def test_update_refuses_bad_bodies(client: Client, body: Any) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json=body, headers=worker
    )
    assert resp.status == 400
    assert (await resp.json())["error"]


# ----------------------------------------------------------- output upload
async def test_output_upload_checks_its_sha(client: Client, tmp_path: Any) -> None:
    worker = await register(client)
    job = await submit_render(client, f"{tmp_path}/out/frame_####", frames="1", file_format="PNG")
    task = await claim(client, worker)
    assert task is not None
    url = f"{API}/worker/tasks/{task['task_id']}/outputs/frame_0001.png"
    data = b"\x89PNG pixels" * 1000
    resp = await client.put(f"{url}?sha256={sha(b'other')}&frame=1", data=data, headers=worker)
    assert resp.status == 400
    assert "does not match" in (await resp.json())["error"]
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)
    assert (await resp.json())["outputs"] == []
    store = tmp_path / "farm"
    assert not (store / "jobs" / str(job["id"]) / "outputs" / "frame_0001.png").exists()
    assert list((store / "tmp").iterdir()) == []  # the refused upload left nothing behind

    resp = await client.put(f"{url}?sha256={sha(data)}&frame=1", data=data, headers=worker)
    assert resp.status == 201, await resp.text()
    out = await resp.json()
    assert (out["name"], out["frame"], out["sha256"], out["size"]) == (
        "frame_0001.png",
        1,
        sha(data),
        len(data),
    )
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame_0001.png", headers=AUTH)
    assert await resp.read() == data


async def test_output_upload_streams_chunks(client: Client, tmp_path: Any) -> None:
    worker = await register(client)
    await submit_render(client, f"{tmp_path}/big_####", frames="1", file_format="OPEN_EXR")
    task = await claim(client, worker)
    assert task is not None
    parts = [bytes([i]) * 300_000 for i in range(8)]

    async def body() -> Any:
        for part in parts:
            yield part

    data = b"".join(parts)
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/big_0001.exr?sha256={sha(data)}",
        data=body(),
        headers=worker,
    )
    assert resp.status == 201, await resp.text()
    assert (await resp.json())["size"] == len(data)


@pytest.mark.parametrize("frame", ["x", "1.5", str(10**30), "-99999999999"])
async def test_output_upload_refuses_bad_frames(client: Client, frame: str) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/a.png?frame={frame}",
        data=b"x",
        headers=worker,
    )
    assert resp.status == 400
    assert "frame" in (await resp.json())["error"]


# --------------------------------------------------------- complete / fail
async def test_complete_then_job_completes(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    await finish(client, worker, task["task_id"])
    assert (await get_job(client, job["id"]))["status"] == "completed"
    # Twice from the same worker is a retry after a lost reply: accepted, no change.
    resp = await client.post(f"{API}/worker/tasks/{task['task_id']}/complete", headers=worker)
    assert resp.status == 200
    # From another worker it is a mistake, said as such.
    other = await register(client, "other")
    resp = await client.post(f"{API}/worker/tasks/{task['task_id']}/complete", headers=other)
    assert resp.status == 409
    assert "assigned to this worker (completed)" in (await resp.json())["error"]


async def test_fail_requeues_for_another_worker_only(client: Client) -> None:
    first, second = await register(client, "w1"), await register(client, "w2")
    job = await submit_sleep(client, count=1)
    task = await claim(client, first)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/fail",
        json={"reason": "out of memory", "log": "Error: Out of memory\n"},
        headers=first,
    )
    assert resp.status == 200
    assert await resp.json() == {"task_status": "queued"}
    assert await claim(client, first) is None  # never the task it already failed
    again = await claim(client, second)
    assert again is not None and again["task_id"] == task["task_id"]
    assert again["attempt"] == 2
    detail = await get_task(client, task["task_id"])
    assert [f["reason"] for f in detail["failures"]] == ["out of memory"]
    resp = await client.get(f"{API}/tasks/{task['task_id']}/log", headers=AUTH)
    assert "Error: Out of memory" in await resp.text()
    assert (await get_job(client, job["id"]))["status"] == "active"


async def test_out_of_attempts_fails_task_and_job_with_a_reason(client: Client) -> None:
    workers = [await register(client, f"w{i}") for i in range(3)]
    job = await submit_sleep(client, count=2, max_attempts=2)
    failing_id = None
    for worker, reason in zip(workers[:2], ("segfault", "GPU lost"), strict=True):
        task = await claim(client, worker)
        assert task is not None
        failing_id = failing_id or task["task_id"]
        assert task["task_id"] == failing_id
        resp = await client.post(
            f"{API}/worker/tasks/{failing_id}/fail", json={"reason": reason}, headers=worker
        )
        assert resp.status == 200
    assert (await resp.json())["task_status"] == "failed"
    job_now = await get_job(client, job["id"])
    assert job_now["status"] == "failed"
    assert "GPU lost" in job_now["status_reason"]
    assert "sleep 1/2" in job_now["status_reason"]
    assert job_now["tasks"][0]["status"] == "failed"
    assert await claim(client, workers[2]) is None  # a failed job hands out nothing


@pytest.mark.parametrize("body", [{}, {"reason": 3}, [], {"reason": "x", "colour": 1}])
async def test_fail_refuses_bad_bodies(client: Client, body: Any) -> None:
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/fail", json=body, headers=worker
    )
    assert resp.status == 400
    assert (await get_task(client, task["task_id"]))["status"] == "active"


# ------------------------------------------------------------------ control
async def test_control_says_continue_then_stop_when_canceled(client: Client) -> None:
    worker = await register(client)
    job = await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    url = f"{API}/worker/tasks/{task['task_id']}/control"
    resp = await client.get(f"{url}?wait=0", headers=worker)
    assert await resp.json() == {"action": "continue"}

    poll = asyncio.create_task(client.get(f"{url}?wait=10", headers=worker))
    await asyncio.sleep(0.2)
    canceled = time.monotonic()
    resp = await client.post(f"{API}/jobs/{job['id']}/cancel", headers=AUTH)
    assert resp.status == 200
    answer = await asyncio.wait_for(poll, 5)
    waited = time.monotonic() - canceled
    assert await answer.json() == {"action": "stop", "reason": "the task is canceled"}
    assert waited < 2.0, f"stop took {waited:.2f} s"


async def test_control_renews_the_lease(make_client: MakeClient) -> None:
    client = await make_client(lease=0.6)
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    url = f"{API}/worker/tasks/{task['task_id']}/control?wait=0.1"
    for _ in range(10):  # a second of heartbeats: longer than the lease
        resp = await client.get(url, headers=worker)
        assert (await resp.json())["action"] == "continue"
    assert (await get_task(client, task["task_id"]))["status"] == "active"


async def test_a_long_control_poll_keeps_the_lease(make_client: MakeClient) -> None:
    """A worker holding a control long-poll open is alive, even if `wait` > lease."""
    client = await make_client(lease=0.8)
    worker = await register(client)
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    url = f"{API}/worker/tasks/{task['task_id']}/control?wait=10"
    for _ in range(3):  # each answers within half a lease, then the worker asks again
        started = time.monotonic()
        resp = await client.get(url, headers=worker)
        assert (await resp.json())["action"] == "continue"
        assert time.monotonic() - started < 2.0
    assert (await get_task(client, task["task_id"]))["status"] == "active"


# ------------------------------------------------------------------- leases
async def test_silent_worker_loses_its_task_to_another(make_client: MakeClient) -> None:
    client = await make_client(lease=0.5)
    quiet, other = await register(client, "quiet"), await register(client, "other")
    job = await submit_sleep(client, count=1)
    task = await claim(client, quiet)
    assert task is not None
    task_id = task["task_id"]

    async def requeued() -> bool:
        return (await get_task(client, task_id))["status"] == "queued"

    await wait_until(requeued, what="the silent worker's lease to run out")
    detail = await get_task(client, task_id)
    assert "lease expired" in detail["failures"][0]["reason"]
    taken = await claim(client, other)
    assert taken is not None and taken["task_id"] == task_id

    for path, body in (("update", {"progress": 0.5}), ("complete", {}), ("fail", {"reason": "x"})):
        resp = await client.post(f"{API}/worker/tasks/{task_id}/{path}", json=body, headers=quiet)
        assert resp.status == 409, path
        error = (await resp.json())["error"]
        assert "assigned to this worker (active on another worker)" in error
    resp = await client.get(f"{API}/worker/tasks/{task_id}/control?wait=0", headers=quiet)
    assert (await resp.json())["action"] == "stop"

    await finish(client, other, task_id)
    assert (await get_job(client, job["id"]))["status"] == "completed"


async def test_lost_lease_upload_is_refused_and_stores_nothing(
    make_client: MakeClient, tmp_path: Any
) -> None:
    client = await make_client(lease=0.3)
    worker = await register(client)
    job = await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None

    async def requeued() -> bool:
        return (await get_task(client, task["task_id"]))["status"] == "queued"

    await wait_until(requeued, what="the lease to run out")
    resp = await client.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/late.png", data=b"late", headers=worker
    )
    assert resp.status == 409
    assert not (tmp_path / "farm" / "jobs" / str(job["id"]) / "outputs").exists()


async def test_lease_lost_during_an_upload_keeps_the_store_consistent(
    client: Client, tmp_path: Any
) -> None:
    """The task is taken away while its output streams in: the upload is refused
    and the file of the same name another worker delivered stays as it was."""
    first, second = await register(client, "first"), await register(client, "second")
    job = await submit_render(client, f"{tmp_path}/out/frame", frames="1", file_format="PNG")
    task = await claim(client, first)
    assert task is not None
    task_id = task["task_id"]
    url = f"{API}/worker/tasks/{task_id}/outputs/frame0001.png"
    gate = asyncio.Event()

    async def slow_body() -> Any:
        yield b"stale " * 1000
        await gate.wait()
        yield b"end"

    upload = asyncio.create_task(client.put(url, data=slow_body(), headers=first))
    await asyncio.sleep(0.1)
    resp = await client.post(f"{API}/worker/sign-off", headers=first)  # hands the task back
    assert resp.status == 200
    again = await claim(client, second)
    assert again is not None and again["task_id"] == task_id
    resp = await client.put(url, data=b"fresh", headers=second)
    assert resp.status == 201
    gate.set()
    late = await upload
    assert late.status == 409
    resp = await client.get(f"{API}/jobs/{job['id']}/outputs/frame0001.png", headers=AUTH)
    assert await resp.read() == b"fresh"
    outputs = (await (await client.get(f"{API}/jobs/{job['id']}/outputs", headers=AUTH)).json())[
        "outputs"
    ]
    assert [o["sha256"] for o in outputs] == [sha(b"fresh")]
    assert list((tmp_path / "farm" / "tmp").iterdir()) == []


async def test_sign_off_hands_the_task_back_without_counting(client: Client) -> None:
    worker, other = await register(client, "leaving"), await register(client, "other")
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(f"{API}/worker/sign-off", headers=worker)
    assert resp.status == 200
    detail = await get_task(client, task["task_id"])
    assert (detail["status"], detail["attempts"], detail["interruptions"]) == ("queued", 1, 1)
    # an interruption, on the record but not blamed on the worker
    assert [(f["reason"], f["blamed"]) for f in detail["failures"]] == [
        ("interrupted (1 of 5): the worker shut down", False)
    ]
    taken = await claim(client, worker)  # the same worker may take it again after a restart
    assert taken is not None and taken["task_id"] == task["task_id"]
    assert other  # registered, unused: the task did not need it


async def test_asking_for_work_drops_what_the_worker_held(client: Client) -> None:
    """A worker that restarted asks for work while the farm thinks it is busy:
    the old attempt is written off (an interruption: no try spent, not blamed) and
    the task queued again."""
    worker = await register(client, "restarted")
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={"progress": 0.5}, headers=worker
    )
    assert resp.status == 200  # it started rendering, then the worker restarted
    again = await claim(client, worker)
    assert again is not None and again["task_id"] == task["task_id"]
    assert again["attempt"] == 2
    detail = await get_task(client, task["task_id"])
    assert "restarted" in detail["failures"][0]["reason"]
    resp = await client.post(
        f"{API}/worker/tasks/{task['task_id']}/update", json={"progress": 0.1}, headers=worker
    )
    assert resp.status == 200  # the new attempt is its own


async def test_a_task_handed_out_but_never_started_costs_no_attempt(client: Client) -> None:
    """The reply carrying the task was lost (or the worker died before starting it):
    asking for work again gets the same task back as the same first attempt."""
    worker = await register(client, "lost reply")
    await submit_sleep(client, count=1)
    task = await claim(client, worker)
    assert task is not None
    again = await claim(client, worker)
    assert again is not None and again["task_id"] == task["task_id"]
    assert again["attempt"] == 1
    assert (await get_task(client, task["task_id"]))["failures"] == []


async def test_worker_goes_offline_and_comes_back(client: Client) -> None:
    worker = await register(client)

    async def status() -> str:
        resp = await client.get(f"{API}/workers", headers=AUTH)
        result: str = (await resp.json())["workers"][0]["status"]
        return result

    # An idle worker may sit in a long-poll for minutes; jump past that instead.
    farm_of(client).sweeps.sweep(now=time.time() + 3600)
    assert await status() == "offline"
    assert await claim(client, worker) is None
    assert await status() == "idle"


# -------------------------------------------------------- scheduling rules
def _chain(settings: JSON) -> list[TaskSpec]:
    """render, render, then a merge that needs both."""
    return [
        TaskSpec(name="render a", kind="sleep", payload={"seconds": 0}),
        TaskSpec(name="render b", kind="sleep", payload={"seconds": 0}),
        TaskSpec(name="merge", kind="sleep", payload={"seconds": 0}, depends_on=(0, 1)),
    ]


@pytest.fixture
def chain_type(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    job_type = JobType(
        name="test-chain",
        label="Chain",
        description="two tasks, then one that depends on both",
        schema=(Setting("unused", "int", "Unused", default=0),),
        compile_fn=_chain,
        needs_blend=False,
    )
    monkeypatch.setitem(job_types.REGISTRY, job_type.name, job_type)
    yield job_type.name


async def test_dependencies_are_respected(client: Client, chain_type: str) -> None:
    first, second = await register(client, "w1"), await register(client, "w2")
    resp = await client.post(
        f"{API}/jobs", headers=AUTH, json={"name": "chain", "type": chain_type}
    )
    assert resp.status == 201, await resp.text()
    job = await resp.json()
    a, b = await claim(client, first), await claim(client, second)
    assert a is not None and b is not None
    assert await claim(client, await register(client, "w3")) is None  # merge waits for both
    await finish(client, first, a["task_id"])
    assert await claim(client, first) is None  # still waiting for b
    await finish(client, second, b["task_id"])
    merge = await claim(client, first)
    assert merge is not None
    detail = await get_task(client, merge["task_id"])
    assert detail["name"] == "merge"
    await finish(client, first, merge["task_id"])
    assert (await get_job(client, job["id"]))["status"] == "completed"


async def test_a_finished_dependency_wakes_a_waiting_worker(
    client: Client, chain_type: str
) -> None:
    first, second = await register(client, "w1"), await register(client, "w2")
    resp = await client.post(f"{API}/jobs", headers=AUTH, json={"name": "c", "type": chain_type})
    assert resp.status == 201
    a, b = await claim(client, first), await claim(client, second)
    assert a is not None and b is not None
    await finish(client, first, a["task_id"])
    poll = asyncio.create_task(claim(client, first, wait=10))
    await asyncio.sleep(0.1)
    await finish(client, second, b["task_id"])
    merge = await asyncio.wait_for(poll, 3)
    assert merge is not None


async def test_higher_priority_first_then_task_order(client: Client) -> None:
    worker = await register(client)
    low = await submit_sleep(client, count=2, name="low", priority=10)
    high = await submit_sleep(client, count=2, name="high", priority=90)
    middle = await submit_sleep(client, count=1, name="middle", priority=50)
    got = []
    for _ in range(5):
        task = await claim(client, worker)
        assert task is not None
        got.append((task["job_id"], (await get_task(client, task["task_id"]))["index"]))
        await finish(client, worker, task["task_id"])
    assert got == [
        (high["id"], 0),
        (high["id"], 1),
        (middle["id"], 0),
        (low["id"], 0),
        (low["id"], 1),
    ]


async def test_equal_priority_oldest_job_first(client: Client) -> None:
    worker = await register(client)
    older = await submit_sleep(client, count=1, name="older")
    await submit_sleep(client, count=1, name="newer")
    task = await claim(client, worker)
    assert task is not None and task["job_id"] == older["id"]


async def test_blender_version_capability(client: Client) -> None:
    old = await register(client, "old", blender="3.4.1")
    new = await register(client, "new", blender="5.0.1")
    job = await submit_sleep(client, count=1, blender_version="5.0")
    assert await claim(client, old) is None
    task = await claim(client, new)
    assert task is not None and task["job_id"] == job["id"]


async def test_an_old_worker_still_gets_jobs_it_can_open(client: Client) -> None:
    old = await register(client, "old", blender="3.4.1")
    await submit_sleep(client, count=1, blender_version="5.0", name="new file")
    older_file = await submit_sleep(client, count=1, blender_version="3.4", name="old file")
    task = await claim(client, old)
    assert task is not None and task["job_id"] == older_file["id"]


async def test_a_long_poll_whose_worker_hung_up_claims_nothing(client: Client) -> None:
    """A worker gave up on its poll (client timeout, restart): the server side
    of that poll must not take a task for it that nobody will run."""
    worker, other = await register(client, "gone"), await register(client, "other")
    poll = asyncio.create_task(claim(client, worker, wait=10))
    await asyncio.sleep(0.2)
    poll.cancel()  # the client closes its connection
    with pytest.raises(asyncio.CancelledError):
        await poll
    await asyncio.sleep(0.1)
    job = await submit_sleep(client, count=1)
    await asyncio.sleep(0.1)
    detail = await get_job(client, job["id"])
    assert detail["tasks"][0]["status"] == "queued"
    taken = await claim(client, other)
    assert taken is not None and taken["job_id"] == job["id"]
