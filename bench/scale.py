"""A 100,000-task job: compiled and stored, listed, filtered; time and memory.

    python bench/scale.py [--tasks 100000] [--runs 3]

Against a real coordinator process: submit a sleep job with N tasks (the
coordinator validates, compiles and stores them in one transaction), list
and filter jobs, fetch the job without its tasks and a page of 100 of them
(what the dashboard and CLI do), the last page and a status-filtered page,
fetch the job with all its tasks, and claim its first task.
Memory is the coordinator's peak resident set (VmHWM).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import proc_stats, report
from tests.support.localfarm import LocalFarm


def one_run(tasks: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LocalFarm(root=Path(tmp)) as farm:
        farm.start_coordinator("--no-zeroconf")
        assert farm.coordinator is not None
        pid = farm.coordinator.process.pid
        client = farm.client()
        for n in range(20):  # some other jobs to filter among
            client.submit(
                {"name": f"other {n}", "type": "sleep", "settings": {"task_count": 5, "seconds": 0}}
            )
        base_rss = proc_stats(pid)["rss_mb"]
        t0 = time.perf_counter()
        job = client.submit(
            {"name": "shot_big", "type": "sleep", "settings": {"task_count": tasks, "seconds": 0}}
        )
        t1 = time.perf_counter()
        page = client.jobs(status="queued", name="shot_*", limit=50)
        t2 = time.perf_counter()
        assert page["total"] == 1 and page["jobs"][0]["id"] == job["id"]
        bare = client.job(job["id"], tasks=False)
        first = client.tasks(job["id"], limit=100)
        tp = time.perf_counter()
        last = client.tasks(job["id"], offset=tasks - 100, limit=100)
        tl = time.perf_counter()
        filtered = client.tasks(job["id"], status="failed,active", limit=100)
        tf = time.perf_counter()
        assert bare["task_counts"] == {"queued": tasks} and len(first["tasks"]) == 100
        assert last["tasks"][-1]["index"] == tasks - 1 and filtered["total"] == 0
        full = client.job(job["id"])
        t3 = time.perf_counter()
        assert len(full["tasks"]) == tasks
        creds = client.register_worker(name="w", host="h", blender_version="4.2", devices=[])
        t4 = time.perf_counter()
        got = client.with_token(creds.secret).next_task(wait=0)
        t5 = time.perf_counter()
        assert got is not None
        stats = proc_stats(pid)
        return {
            "submit_s": t1 - t0,
            "list_filter_s": t2 - t1,
            "job_and_first_page_s": tp - t2,
            "last_page_s": tl - tp,
            "filtered_page_s": tf - tl,
            "get_with_tasks_s": t3 - tf,
            "first_claim_s": t5 - t4,
            "coordinator_peak_rss_mb": stats["rss_mb"],
            "rss_growth_mb": stats["rss_mb"] - base_rss,
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        runs.append(one_run(args.tasks))
        print(f"run {n + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in runs[-1].items()), flush=True)
    report(f"scale: one job of {args.tasks} tasks", runs)


if __name__ == "__main__":
    main()
