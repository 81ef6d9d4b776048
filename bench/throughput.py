"""Coordinator throughput with N simulated workers over loopback.

    python bench/throughput.py [--workers 200] [--tasks 1000,10000,100000]
                               [--runs 3] [--modes chained,claim] [--max-seconds S]

A real `python -m coordinator serve` process; the simulated workers are
asyncio tasks in this process, each with its own keep-alive connection,
looping claim -> complete over HTTP as fast as the coordinator answers.
Reports completed tasks per second, p50/p99 latency of the calls, and the
coordinator's CPU time and peak memory.

Several job sizes run in one invocation, interleaved run by run (1,000,
10,000, 100,000, then again), so a change in the machine's load hits every
size alike and their ratio stays fair. The clock starts when the submit is
answered: compiling and storing a big job is `bench/scale.py`'s figure, not
the claim/complete path's. --max-seconds stops a run early and reports the
rate so far (for a slow coordinator on a big job).
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import proc_stats, report
from tests.support.localfarm import LocalFarm


class Connection:
    """A minimal keep-alive HTTP/1.1 client: the load generator must cost far
    less CPU than the coordinator it measures (aiohttp's client costs about as
    much as the server on this machine)."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, secret: str
    ) -> None:
        self.reader, self.writer = reader, writer
        self.head = f"Host: {host}\r\nAuthorization: Bearer {secret}\r\n"

    async def post(self, path: str, body: bytes = b"") -> tuple[int, bytes]:
        self.writer.write(
            f"POST {path} HTTP/1.1\r\n{self.head}Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        status_line = await self.reader.readline()
        length = 0
        while (line := await self.reader.readline()) not in (b"\r\n", b""):
            if line[:15].lower() == b"content-length:":
                length = int(line[15:])
        body = await self.reader.readexactly(length) if length else b""
        return int(status_line.split()[1]), body


_TASK_ID = re.compile(rb'"task_id":\s*(\d+)')


async def worker(
    url: str,
    secret: str,
    latencies: list[float],
    done: list[int],
    stop: asyncio.Event,
    *,
    chain: bool,
    source: str,
) -> None:
    """claim -> complete, as a real agent does: with chain, the completion also
    carries the next assignment (complete {"next": true}), as the agent asks."""
    host, port = url.removeprefix("http://").split(":")
    # Each simulated worker from its own loopback address, as machines on a LAN
    # are: the coordinator caps the connections one address may hold.
    reader, writer = await asyncio.open_connection(host, int(port), local_addr=(source, 0))
    conn = Connection(reader, writer, f"{host}:{port}", secret)
    body_next = b'{"next": true}' if chain else b""
    task_id: int | None = None
    try:
        while not stop.is_set():
            t0 = time.perf_counter()
            if task_id is None:
                status, body = await conn.post("/api/v1/worker/task?wait=1")
                if status == 204:
                    continue
                match = _TASK_ID.search(body)
                assert status == 200 and match, body
                task_id = int(match[1])
                latencies.append(time.perf_counter() - t0)
                t0 = time.perf_counter()
            status, body = await conn.post(f"/api/v1/worker/tasks/{task_id}/complete", body_next)
            assert status == 200, body
            latencies.append(time.perf_counter() - t0)
            done.append(1)
            match = _TASK_ID.search(body)
            task_id = int(match[1]) if match else None
    finally:
        writer.close()


def loopback(n: int) -> str:
    """The n-th address of 127.0.0.0/8 after 127.0.0.1 (any of them reaches this machine)."""
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


async def one_run(
    farm: LocalFarm,
    workers: int,
    tasks: int,
    *,
    chain: bool = True,
    max_seconds: float = 0.0,
) -> dict[str, float]:
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
            asyncio.create_task(
                worker(farm.url, s, latencies, done, stop, chain=chain, source=loopback(n))
            )
            for n, s in enumerate(secrets)
        ]
        await asyncio.sleep(0.5)  # all of them waiting on their long-polls
        assert farm.coordinator is not None
        submitted = time.perf_counter()
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
        started = time.perf_counter()
        done_at_start = len(done)
        cpu0 = proc_stats(farm.coordinator.process.pid)["cpu_seconds"]
        deadline = started + max_seconds if max_seconds > 0 else float("inf")
        while len(done) < tasks and time.perf_counter() < deadline:
            await asyncio.sleep(0.05)
        elapsed = time.perf_counter() - started
        completed = len(done) - done_at_start
        stats = proc_stats(farm.coordinator.process.pid)
        stop.set()
        await asyncio.gather(*runners)
        if len(done) >= tasks:
            async with session.get(f"{farm.url}/api/v1/jobs/{job_id}?tasks=0", headers=token) as r:
                assert (await r.json())["status"] == "completed"
    latencies.sort()
    return {
        "tasks_per_s": completed / elapsed,
        "submit_s": started - submitted,
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
        "coordinator_cpu_ms_per_task": (stats["cpu_seconds"] - cpu0) * 1000 / max(completed, 1),
        "coordinator_rss_mb": stats["rss_mb"],
        "elapsed_s": elapsed,
    }


MODES = {"chained": True, "claim": False}


def _int_list(text: str) -> list[int]:
    return [int(part.replace("_", "")) for part in text.split(",") if part]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--workers", type=int, default=200)
    parser.add_argument(
        "--tasks", type=_int_list, default=[20000], help="job sizes, comma-separated"
    )
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--modes",
        default="claim,chained",
        help="chained: complete {next: true}, as the agent does; claim: claim, then complete",
    )
    parser.add_argument("--max-seconds", type=float, default=0.0, help="stop a run early")
    args = parser.parse_args()
    for mode in args.modes.split(","):
        chain = MODES[mode]
        results: dict[int, list[dict[str, float]]] = {size: [] for size in args.tasks}
        for run in range(args.runs):
            for size in args.tasks:
                with tempfile.TemporaryDirectory() as tmp, LocalFarm(root=Path(tmp)) as farm:
                    farm.start_coordinator("--no-zeroconf")
                    result = asyncio.run(
                        one_run(farm, args.workers, size, chain=chain, max_seconds=args.max_seconds)
                    )
                results[size].append(result)
                print(
                    f"{mode} {size} tasks, run {run + 1}: "
                    + ", ".join(f"{k}={v:.1f}" for k, v in result.items()),
                    flush=True,
                )
        for size in args.tasks:
            title = f"throughput: {args.workers} simulated workers, {size} tasks, {mode}"
            report(title, results[size])
        if len(args.tasks) > 1:
            first, last = args.tasks[0], args.tasks[-1]
            ratios = [
                big["tasks_per_s"] / small["tasks_per_s"]
                for small, big in zip(results[first], results[last], strict=True)
            ]
            print(
                f"  {last} / {first} tasks/s, run by run: "
                + ", ".join(f"{r:.3f}" for r in ratios)
                + f"; median {statistics.median(ratios):.3f}"
            )


if __name__ == "__main__":
    main()
