"""Files ahead of time: the second job's start on one worker, with and without prefetch.

    python bench/prefetch.py [--megabytes 200] [--runs 3] [--threads 2]

A real coordinator and one real worker (Debian's Blender 3.4). Two jobs are
queued, each a small scene (160x120, 128 samples) with a sizable project file
of random bytes beside it (`textures/big.bin`, --megabytes, not read by the
scene: what matters is that it must be on the worker before Blender starts):
job A renders 2 frames in one task, job B one frame. The worker takes A
first; with prefetch it fetches B's files while A renders. Measured: B's
render task's Blender ready stage, seconds from the worker getting the task to
Blender holding the scene (fetch, lay out, open the file), and its whole task
(the coordinator's claim to completion). Each run has a fresh worker (an
empty cache); the two modes alternate run by run.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import machine
from coordinator.client.http import FarmClientError
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm

MODES = {"prefetch": [], "no prefetch": ["--prefetch-gb", "0"]}


def project(root: Path, name: str, megabytes: int) -> dict[str, Path]:
    blend = make_scene(
        root / name / "shot.blend", frames=(1, 2), samples=128, resolution=(160, 120)
    )
    big = root / name / "textures" / "big.bin"
    big.parent.mkdir(parents=True, exist_ok=True)
    with big.open("wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    return {"shot.blend": blend, "textures/big.bin": big}


def submit(farm: LocalFarm, name: str, files: dict[str, Path], frames: str, out: Path) -> int:
    client = farm.client()
    hashes, _ = client.upload_project(files)
    job = client.submit(
        {
            "name": name,
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            "settings": {"frames": frames, "chunk_size": 2, "output": str(out / "f_####")},
        }
    )
    return int(job["id"])


def render_task(farm: LocalFarm, job_id: int, timeout: float = 600) -> dict:
    """The job's (first) render task once completed, with its stages."""
    client = farm.client()
    deadline = time.monotonic() + timeout
    while True:
        listed = next(t for t in client.tasks(job_id)["tasks"] if t["kind"] == "render")
        if listed["status"] == "completed":
            return client.task(listed["id"])
        if listed["status"] == "failed" or time.monotonic() > deadline:
            raise RuntimeError(f"job {job_id}'s render task: {listed['status']}: {farm.describe()}")
        time.sleep(0.1)


def one_run(farm: LocalFarm, root: Path, mode: str, n: int, projects: dict, threads: int) -> dict:
    out = root / f"out-{n}-{mode.replace(' ', '-')}"
    a = submit(farm, "A", projects["A"], "1-2", out / "A")
    b = submit(farm, "B", projects["B"], "1", out / "B")
    load = os.getloadavg()[0]
    worker = farm.start_worker(
        f"w{n}-{mode.replace(' ', '-')}",
        "--threads",
        str(threads),
        *MODES[mode],
        blender=DEBIAN_BLENDER,
    )
    try:
        task_a, task_b = render_task(farm, a), render_task(farm, b)
        fetched_ahead = f"prefetch: job {b}'s files are here" in worker.log()
    finally:
        worker.stop()
        for job in (a, b):  # a task left (a preview, if the job type makes one) goes
            with contextlib.suppress(FarmClientError):
                farm.client().cancel_job(job)
    return {
        "mode": mode,
        "b_ready": task_b["stages"]["blender_ready"],
        "b_task": task_b["completed_at"] - task_b["claimed_at"],
        "a_ready": task_a["stages"]["blender_ready"],
        "a_task": task_a["completed_at"] - task_a["claimed_at"],
        "load": load,
        "fetched_ahead": fetched_ahead,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--megabytes", type=int, default=200, help="each job's big file")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        projects = {name: project(root, name, args.megabytes) for name in ("A", "B")}
        with LocalFarm(root=root / "farm", lease_seconds=60) as farm:
            farm.start_coordinator("--no-zeroconf")
            for n in range(args.runs):
                for mode in MODES:
                    row = one_run(farm, root, mode, n, projects, args.threads)
                    rows.append(row)
                    print(
                        f"run {n + 1} {mode:12s} B: Blender ready +{row['b_ready']:.2f} s,"
                        f" task {row['b_task']:.2f} s; A: ready +{row['a_ready']:.2f} s,"
                        f" task {row['a_task']:.2f} s (load {row['load']:.1f};"
                        f" B's files fetched ahead: {row['fetched_ahead']})",
                        flush=True,
                    )
    print(f"\nmedians, {args.megabytes} MB a job — {machine()}")
    for mode in MODES:
        cell = [r for r in rows if r["mode"] == mode]
        med = {k: statistics.median(r[k] for r in cell) for k in ("b_ready", "b_task", "a_task")}
        runs = ", ".join(f"{r['b_ready']:.2f}" for r in cell)
        print(
            f"{mode:12s} B claim -> Blender ready {med['b_ready']:.2f} s ({runs});"
            f" B task {med['b_task']:.2f} s; A task {med['a_task']:.2f} s"
        )
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
