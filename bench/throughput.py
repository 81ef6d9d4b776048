"""Coordinator throughput with N simulated workers over loopback.

    python bench/throughput.py [--workers 200] [--tasks 20000] [--runs 3]

A real `python -m coordinator serve` process; the simulated workers are
asyncio tasks in this process, each looping claim -> complete over HTTP as
fast as the coordinator answers. Reports completed tasks per second, p50/p99
latency of the two calls, and the coordinator's CPU time and peak memory.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import proc_stats, report
from coordinator.localfarm import LocalFarm


async def worker(
    session: aiohttp.ClientSession,
    url: str,
    secret: str,
    latencies: list[float],
    done: list[int],
    stop: asyncio.Event,
) -> None:
    headers = {"Authorization": f"Bearer {secret}"}
    while not stop.is_set():
        t0 = time.perf_counter()
        async with session.post(f"{url}/api/v1/worker/task?wait=1", headers=headers) as resp:
            if resp.status == 204:
                continue
            task = await resp.json()
        t1 = time.perf_counter()
        async with session.post(
            f"{url}/api/v1/worker/tasks/{task['task_id']}/complete", headers=headers, json={}
        ) as resp:
            assert resp.status == 200, await resp.text()
        t2 = time.perf_counter()
        latencies += (t1 - t0, t2 - t1)
        done.append(1)


async def one_run(farm: LocalFarm, workers: int, tasks: int) -> dict[str, float]:
    token = {"Authorization": f"Bearer {farm.token}"}
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        secrets = []
        for n in range(workers):
            async with session.post(
                f"{farm.url}/api/v1/workers",
                headers=token,
                json={"name": f"sim{n}", "blender_version": "4.2"},
            ) as r:
                secrets.append((await r.json())["secret"])
        latencies: list[float] = []
        done: list[int] = []
        stop = asyncio.Event()
        runners = [
            asyncio.create_task(worker(session, farm.url, s, latencies, done, stop))
            for s in secrets
        ]
        await asyncio.sleep(0.5)  # all of them waiting on their long-polls
        assert farm.coordinator is not None
        cpu0 = proc_stats(farm.coordinator.process.pid)["cpu_seconds"]
        started = time.perf_counter()
        async with session.post(
            f"{farm.url}/api/v1/jobs",
            headers=token,
            json={
                "name": "bench",
                "type": "sleep",
                "settings": {"task_count": tasks, "seconds": 0},
            },
        ) as r:
            job_id = (await r.json())["id"]
        while len(done) < tasks:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        stop.set()
        await asyncio.gather(*runners)
        stats = proc_stats(farm.coordinator.process.pid)
        async with session.get(f"{farm.url}/api/v1/jobs/{job_id}?tasks=0", headers=token) as r:
            assert (await r.json())["status"] == "completed"
    latencies.sort()
    return {
        "tasks_per_s": tasks / elapsed,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "coordinator_cpu_s": stats["cpu_seconds"] - cpu0,
        "coordinator_rss_mb": stats["rss_mb"],
        "elapsed_s": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument("--tasks", type=int, default=20000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    results = []
    for run in range(args.runs):
        with tempfile.TemporaryDirectory() as tmp, LocalFarm(root=Path(tmp)) as farm:
            farm.start_coordinator("--no-zeroconf")
            results.append(asyncio.run(one_run(farm, args.workers, args.tasks)))
            print(
                f"run {run + 1}: " + ", ".join(f"{k}={v:.1f}" for k, v in results[-1].items()),
                flush=True,
            )
    report(f"throughput: {args.workers} simulated workers, {args.tasks} tasks", results)


if __name__ == "__main__":
    main()
