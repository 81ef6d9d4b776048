"""Farm overhead: one worker against plain `blender -b -a` with the same threads.

    python bench/overhead.py [--frames 12] [--slow-frames 6] [--chunks 1,6] [--runs 3]
                             [--threads 2] [--baseline-repo DIR] [--scenes small,slow]
    python bench/overhead.py --scenes progressive [--progressive-frames 2]
                             [--sample-chunks 2,4] [--modes warm,cold] [--pair]

Side by side in one run, for each scene (`small`: 160x120, 128 samples, about
a second a frame; `slow`: the same with a 524k-face sphere stored in the file,
44 MB, slow to open and to hand to Cycles) and each round: plain Blender
renders the frames with -a, then one worker renders them as a job of the
given chunk size, in each mode: `warm` (the default worker: the job's Blender
stays open), `cold` (--warm-tasks 1: a fresh Blender per task), `persist`
(warm with --persistent-data) and, with --baseline-repo (a checkout of an
earlier commit), `before` (that commit's worker); persist and before at chunk
size 1 only. Only one worker runs at a time, started before the submit and
stopped after.

`progressive` (not run unless named in --scenes): the small scene's frames as a
blender-render-progressive job, each frame's samples split into
--sample-chunks chunks (a render task per chunk and frame, then a merge task
per chunk and frame), against plain `blender -b -f 1..N` of the full sample
count with the same threads; its "chunk" column is the number of sample chunks.

The farm's time runs from the submit's answer to the last task's completion
(the coordinator's clock, GET /tasks/{id}); per-task overhead is
(farm - plain) / tasks. The stages of each task (Blender ready, first sample,
last frame saved, uploaded, completed) say where a task's time went.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
import itertools

from bench.common import machine
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm
from tests.support.waiting import wait_for

BLENDER = [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y"]

# Makes the slow scene's sphere a 524k-face mesh stored in the file (44 MB: slow to
# read and to hand to Cycles) under a Displace modifier.
_BIG_MESH = (
    "import bpy, bmesh; ball = bpy.data.objects['Ball']; bm = bmesh.new();"
    " bmesh.ops.create_uvsphere(bm, u_segments=1024, v_segments=512, radius=0.5);"
    " bm.to_mesh(ball.data); bm.free();"
    " ball.modifiers.new('Displace', 'DISPLACE').strength = 0.05;"
    " bpy.ops.wm.save_mainfile()"
)


def scene(root: Path, name: str, frames: int, samples: int) -> Path:
    blend = make_scene(
        root / name / "shot.blend", frames=(1, frames), samples=samples, resolution=(160, 120)
    )
    if name == "slow":
        subprocess.run(
            [
                DEBIAN_BLENDER,
                "-b",
                "--factory-startup",
                "-Y",
                str(blend),
                "--python-expr",
                _BIG_MESH,
            ],
            check=True,
            capture_output=True,
        )
    return blend


def plain(blend: Path, out: Path, frames: int, threads: int) -> float:
    t0 = time.perf_counter()
    subprocess.run(
        [
            DEBIAN_BLENDER,
            "-b",
            "--factory-startup",
            "-Y",
            str(blend),
            "-o",
            str(out / "frame_####"),
            "-t",
            str(threads),
            "-s",
            "1",
            "-e",
            str(frames),
            "-a",
        ],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def plain_frames(blend: Path, out: Path, frames: int, threads: int) -> float:
    """`blender -b -f 1..N`: what an artist would run for the progressive job's frames."""
    span = f"1..{frames}"
    t0 = time.perf_counter()
    subprocess.run(
        [*BLENDER, str(blend), "-o", str(out / "frame_####"), "-t", str(threads), "-f", span],
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - t0


def start_worker(farm: LocalFarm, name: str, args: Sequence[str], repo: Path | None) -> Any:
    """A worker of this checkout (or of repo, an earlier commit's checkout)."""
    if repo is None:
        return farm.start_worker(name, *args, blender=DEBIAN_BLENDER)
    before = len(farm.client().workers())
    env = dict(os.environ, PYTHONPATH=str(repo), PYTHONUNBUFFERED="1", FARM_TOKEN=farm.token)
    argv = [sys.executable, "-m", "worker_agent", "--coordinator", farm.url]
    argv += ["--name", name, "--cache-dir", str(farm.root / name)]
    argv += ["--poll-wait", "5", "--blender", DEBIAN_BLENDER, *args]
    log = (farm.root / f"{name}.log").open("ab")
    process = subprocess.Popen(argv, cwd=repo, env=env, stdout=log, stderr=subprocess.STDOUT)
    wait_for(lambda: len(farm.client().workers()) > before, 60, f"worker {name} registered")
    return process


def stop_worker(worker: Any) -> None:
    if isinstance(worker, subprocess.Popen):
        worker.kill()
        worker.wait()
    else:
        worker.stop()


def farm_render(
    farm: LocalFarm, blend: Path, out: Path, frames: int, chunk: int, *, samples: int = 0
) -> dict:
    """Submit, wait, and read the tasks' timings: the job's seconds and its stages.
    With samples: a progressive job of `chunk` sample chunks of those samples."""
    client = farm.client()
    files, _ = client.upload_project({"shot.blend": blend})
    settings: dict[str, Any] = {"frames": f"1-{frames}", "output": str(out / "f_")}
    if samples:
        settings.update(samples=samples, chunks=chunk, output=str(out / "frame_####"))
    else:
        # The render tasks against `-a`: the preview movie made after them is not
        # part of what `-a` does (and the worker of --baseline-repo has no such kind).
        settings.update(chunk_size=chunk, preview=False)
    t0 = time.time()
    job = client.submit(
        {
            "name": "overhead",
            "type": "blender-render-progressive" if samples else "blender-render",
            "blend": "shot.blend",
            "files": files,
            "blender_version": "3.4",
            "settings": settings,
        }
    )
    done = farm.wait_for_job(job["id"], timeout=3600)
    assert done["status"] == "completed", done["status_reason"]
    timings = [flat(client.task(t["id"])) for t in client.tasks(job["id"])["tasks"]]
    end = max(t["completed_at"] for t in timings)
    return {"seconds": end - t0, "tasks": len(timings), "timings": timings}


def flat(task: dict) -> dict:
    """A task's claim, completion and reported stages (None: not reported)."""
    names = ("blender_ready", "first_sample", "last_frame_saved", "uploaded")
    stages = {name: task["stages"].get(name) for name in names}
    times = {"claimed_at": task["claimed_at"], "completed_at": task["completed_at"]}
    return {"kind": task["kind"], **times, **stages}


def stages(timings: list[dict]) -> dict[str, float]:
    """Median seconds per task: to Blender ready, and from the last frame saved to
    the completion (the farm's own tail), and the gap between tasks; with the
    medians of render and merge tasks apart when a job has both."""
    ready = [t["blender_ready"] for t in timings if t["blender_ready"] is not None]
    tail = [
        t["completed_at"] - t["claimed_at"] - t["last_frame_saved"]
        for t in timings
        if t["last_frame_saved"] is not None
    ]
    ordered = sorted(timings, key=lambda t: t["claimed_at"])
    gaps = [b["claimed_at"] - a["completed_at"] for a, b in itertools.pairwise(ordered)]
    took = {
        kind: statistics.median(
            t["completed_at"] - t["claimed_at"] for t in timings if t["kind"] == kind
        )
        for kind in {t["kind"] for t in timings}
    }
    return {
        "ready": statistics.median(ready) if ready else float("nan"),
        "tail": statistics.median(tail) if tail else float("nan"),
        "gap": statistics.median(gaps) if gaps else 0.0,
        "render_task": took.get("render", float("nan")),
        "merge_task": took.get("merge", float("nan")),
    }


MODES = {"warm": [], "cold": ["--warm-tasks", "1"], "persist": ["--persistent-data"]}
ONLY_CHUNK_1 = ("persist", "before")  # compared at chunk size 1 only, to keep a run short


def frames_of(args: argparse.Namespace, name: str) -> int:
    return {"small": args.frames, "slow": args.slow_frames}.get(name, args.progressive_frames)


def measure(args: argparse.Namespace, farm: LocalFarm, root: Path) -> list[dict]:
    rows = []
    modes = dict(MODES, **({"before": []} if args.baseline_repo else {}))
    if args.modes:
        modes = {m: modes[m] for m in args.modes.split(",")}
    for name in args.scenes.split(","):
        progressive = name == "progressive"
        frames = frames_of(args, name)
        blend = scene(root, name, frames, args.samples)
        chunks = args.sample_chunks if progressive else args.chunks

        for n in range(args.runs):

            def plain_run(n: int, label: str, name: str = name, blend: Path = blend) -> float:
                out = root / f"plain-{name}-{n}-{label.replace(' ', '-')}"
                render = plain_frames if name == "progressive" else plain
                seconds = render(blend, out, frames_of(args, name), args.threads)
                rows.append({"scene": name, "mode": "plain", "chunk": 0, "seconds": seconds})
                print(f"{name} run {n + 1}: plain {seconds:.2f} s ({label})", flush=True)
                return seconds

            plain_s = 0.0 if args.pair else plain_run(n, "for the round")
            for chunk in map(int, chunks.split(",")):
                for mode, extra in modes.items():
                    if chunk != 1 and mode in ONLY_CHUNK_1 and not progressive:
                        continue
                    if args.pair:  # right before this farm run: the same load, near enough
                        plain_s = plain_run(n, f"for {mode}, chunk {chunk}")
                    repo = Path(args.baseline_repo) if mode == "before" else None
                    worker = start_worker(
                        farm,
                        f"{mode}-{name}-{chunk}-{n}",
                        ["--threads", str(args.threads), *extra],
                        repo,
                    )
                    try:
                        out = root / f"{mode}-{name}-{chunk}-{n}"
                        result = farm_render(
                            farm,
                            blend,
                            out,
                            frames,
                            chunk,
                            samples=args.samples if progressive else 0,
                        )
                    finally:
                        stop_worker(worker)
                    row = {"scene": name, "mode": mode, "chunk": chunk, "plain": plain_s}
                    row.update(result, **stages(result.pop("timings")))
                    rows.append(row)
                    print(
                        f"  chunk {chunk} {mode:6s} {row['seconds']:7.2f} s  ratio"
                        f" {row['seconds'] / plain_s:.3f}  per task"
                        f" {(row['seconds'] - plain_s) / row['tasks']:+.3f} s  (ready"
                        f" {row['ready']:.2f} s, tail {row['tail']:.3f} s, gap {row['gap']:.3f} s;"
                        f" render task {row['render_task']:.2f} s,"
                        f" merge {row['merge_task']:.2f} s)",
                        flush=True,
                    )
    return rows


def summary(rows: list[dict]) -> None:
    print(f"\nmedians of each cell — {machine()}")
    print(
        "scene       chunk mode    farm s  plain s  ratio  overhead/task  ready  tail   gap"
        "  render merge"
    )
    cells = sorted({(r["scene"], r["chunk"], r["mode"]) for r in rows if r["mode"] != "plain"})
    for scene_name, chunk, mode in cells:
        cell = [r for r in rows if (r["scene"], r["chunk"], r["mode"]) == (scene_name, chunk, mode)]
        farm_s = statistics.median(r["seconds"] for r in cell)
        plain_s = statistics.median(r["plain"] for r in cell)
        ratio = statistics.median(r["seconds"] / r["plain"] for r in cell)
        per_task = statistics.median((r["seconds"] - r["plain"]) / r["tasks"] for r in cell)
        keys = ("ready", "tail", "gap", "render_task", "merge_task")
        med = {k: statistics.median(r[k] for r in cell) for k in keys}
        print(
            f"{scene_name:11s} {chunk:5d} {mode:6s} {farm_s:7.2f} {plain_s:8.2f} {ratio:6.3f}"
            f" {per_task:+13.3f} {med['ready']:6.2f} {med['tail']:5.3f} {med['gap']:5.3f}"
            f" {med['render_task']:6.2f} {med['merge_task']:5.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=12, help="frames of the small scene")
    parser.add_argument("--slow-frames", type=int, default=6, help="frames of the slow scene")
    parser.add_argument("--samples", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--chunks", default="1,6")
    parser.add_argument("--scenes", default="small,slow", help="small, slow, progressive")
    parser.add_argument("--modes", help="only these modes (default: all)")
    parser.add_argument(
        "--pair",
        action="store_true",
        help="run plain Blender again right before each farm run and compare the two"
        " (on a machine whose load changes, instead of once per round)",
    )
    parser.add_argument("--progressive-frames", type=int, default=2)
    parser.add_argument("--sample-chunks", default="4", help="progressive: sample chunks")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--baseline-repo", help="a checkout of an earlier commit: its worker too")
    args = parser.parse_args()
    print(f"load average at start: {os.getloadavg()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        with LocalFarm(root=root / "farm", lease_seconds=60) as farm:
            farm.start_coordinator("--no-zeroconf")
            rows = measure(args, farm, root)
    summary(rows)
    print(f"load average at the end: {os.getloadavg()}")


if __name__ == "__main__":
    main()
