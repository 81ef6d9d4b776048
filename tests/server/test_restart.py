"""A coordinator that stops (or crashes) and starts again on the same data
folder loses nothing: jobs, tasks, statuses, leases and workers are all there."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestClient

from tests.conftest import (
    API,
    AUTH,
    TOKEN,
    claim,
    finish,
    get_job,
    get_task,
    register,
    sha,
    submit_render,
    submit_sleep,
    wait_until,
)
from tests.support.coordinator_process import coordinator_process

Client = TestClient[Any, Any]
MakeClient = Callable[..., Awaitable[Client]]
ROOT = Path(__file__).resolve().parents[2]


async def test_two_app_lives_on_one_data_dir(make_client: MakeClient, tmp_path: Path) -> None:
    data_dir = tmp_path / "farm"
    first = await make_client(data_dir=data_dir, lease=1.0)
    worker = await register(first)
    job = await submit_sleep(first, count=3, name="survivor", priority=70)
    held = await claim(first, worker)
    assert held is not None
    resp = await first.post(
        f"{API}/worker/tasks/{held['task_id']}/update",
        json={"progress": 0.5, "log": "before the restart\n"},
        headers=worker,
    )
    assert resp.status == 200
    before = await get_job(first, job["id"])
    await first.close()  # the first life ends: store closed, sweeper stopped

    second = await make_client(data_dir=data_dir, lease=1.0)
    after = await get_job(second, job["id"])
    for key in ("name", "priority", "status", "settings", "created_at", "task_counts"):
        assert after[key] == before[key], key
    assert [(t["id"], t["status"]) for t in after["tasks"]] == [
        (t["id"], t["status"]) for t in before["tasks"]
    ]
    assert after["tasks"][0]["worker_id"] == worker["X-Worker-Id"]
    resp = await second.get(f"{API}/tasks/{held['task_id']}/log", headers=AUTH)
    assert "before the restart" in await resp.text()

    # the worker's secret still works, and its lease still runs out
    async def requeued() -> bool:
        return (await get_task(second, held["task_id"]))["status"] == "queued"

    await wait_until(requeued, what="the lease taken before the restart to run out")
    for _ in range(3):
        task = await claim(second, worker)
        assert task is not None
        await finish(second, worker, task["task_id"])
    done = await get_job(second, job["id"])
    assert done["status"] == "completed"
    assert done["task_counts"] == {"completed": 3}


async def test_half_copied_frames_are_cleaned_up_on_the_next_start(
    make_client: MakeClient, tmp_path: Path
) -> None:
    """A coordinator killed while copying a frame into the output folder leaves its
    temporary file there; the next start removes it, and only it."""
    data_dir, out = tmp_path / "farm", tmp_path / "out"
    first = await make_client(data_dir=data_dir)
    await submit_render(first, str(out / "frame_####"), frames="1")
    worker = await register(first)
    task = await claim(first, worker)
    assert task is not None
    resp = await first.put(
        f"{API}/worker/tasks/{task['task_id']}/outputs/frame_0001.png?sha256={sha(b'px')}",
        data=b"px",
        headers=worker,
    )
    assert resp.status == 201
    await first.close()
    # What the kill left behind, next to what is the artist's own
    (out / ".frame_0001.png.k2j_4h5g.part").write_bytes(b"p")
    mine = [".frame_0002.png.abcdefgh.part", ".notes.txt.part", "frame_0001.png.x1234567.part"]
    for name in mine:
        (out / name).write_bytes(b"artist")

    second = await make_client(data_dir=data_dir)

    async def cleaned() -> bool:
        return not (out / ".frame_0001.png.k2j_4h5g.part").exists()

    await wait_until(cleaned, what="the half-copied frame to be removed")
    assert sorted(p.name for p in out.iterdir()) == sorted([*mine, "frame_0001.png"])
    await second.close()


@contextmanager
def coordinator(data_dir: Path, *, lease: float) -> Iterator[tuple[str, Any]]:
    """A real `python -m coordinator serve` on loopback; yields (API url, process).
    The tests kill it themselves, so its log is not checked for a clean end."""
    args = ["--lease-seconds", str(lease)]
    with coordinator_process(data_dir, token=TOKEN, args=args, check_log=False) as running:
        yield f"{running.url}{API}", running.process


async def _call(http: aiohttp.ClientSession, method: str, url: str, **kwargs: Any) -> Any:
    async with http.request(method, url, **kwargs) as resp:
        assert resp.status < 300, f"{method} {url}: {resp.status} {await resp.text()}"
        return None if resp.status == 204 else await resp.json()


async def test_a_real_coordinator_killed_and_restarted(tmp_path: Path) -> None:
    data_dir = tmp_path / "farm"
    async with aiohttp.ClientSession(headers=AUTH) as http:
        with coordinator(data_dir, lease=2.5) as (url, process):
            creds = await _call(
                http, "POST", f"{url}/workers", json={"name": "w", "blender_version": "4.2"}
            )
            worker = {"Authorization": f"Bearer {creds['secret']}"}
            job = await _call(
                http,
                "POST",
                f"{url}/jobs",
                json={"name": "crash test", "type": "sleep", "settings": {"task_count": 2}},
            )
            held = await _call(http, "POST", f"{url}/worker/task?wait=0", headers=worker)
            before = await _call(http, "GET", f"{url}/jobs/{job['id']}")
            process.send_signal(signal.SIGKILL)  # no clean shutdown at all
            process.wait(10)

        with coordinator(data_dir, lease=2.5) as (url, _):
            after = await _call(http, "GET", f"{url}/jobs/{job['id']}")
            assert after["status"] == before["status"] == "active"
            assert [t["status"] for t in after["tasks"]] == ["active", "queued"]
            assert after["tasks"][0]["id"] == held["task_id"]
            # the lease runs out in the new life too, and the work gets done
            deadline = time.monotonic() + 10
            while (await _call(http, "GET", f"{url}/tasks/{held['task_id']}"))[
                "status"
            ] != "queued":
                assert time.monotonic() < deadline, "the old lease never ran out"
                await asyncio.sleep(0.1)
            for _ in range(2):
                task = await _call(http, "POST", f"{url}/worker/task?wait=0", headers=worker)
                await _call(
                    http, "POST", f"{url}/worker/tasks/{task['task_id']}/complete", headers=worker
                )
            done = await _call(http, "GET", f"{url}/jobs/{job['id']}")
            assert done["status"] == "completed"
