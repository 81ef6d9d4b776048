"""`make demo`: a real render on a real local farm.

Starts a coordinator and two workers on this machine (loopback only),
generates a small animated Cycles scene, submits it as a `blender-render`
job in chunks, shows progress, and leaves the frames in ./demo-output/.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from coordinator.client.http import FarmClient  # noqa: E402
from tests.support.blendgen import make_scene  # noqa: E402
from tests.support.localfarm import LocalFarm  # noqa: E402


def bar(fraction: float, width: int = 30) -> str:
    filled = round(fraction * width)
    return "[" + "#" * filled + "." * (width - filled) + f"] {fraction * 100:5.1f}%"


def follow(client: FarmClient, job_id: int, frames: int) -> dict:
    """Print progress until the job ends."""
    tty = sys.stdout.isatty()
    last = ""
    while True:
        job = client.job(job_id, tasks=False)
        done = len(client.outputs(job_id))
        line = f"{bar(job['progress'])}  {done}/{frames} frames  {job['status']}"
        if line != last:
            print(("\r" + line) if tty else line, end="" if tty else "\n", flush=True)
            last = line
        if job["status"] in ("completed", "failed", "canceled"):
            if tty:
                print()
            return job
        time.sleep(0.5)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk-size", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--output", type=Path, default=REPO / "demo-output")
    parser.add_argument(
        "--keep-running",
        action="store_true",
        help="leave the farm up after the render (Ctrl+C to stop)",
    )
    args = parser.parse_args()

    farm_dir = REPO / "demo-farm"
    shutil.rmtree(farm_dir, ignore_errors=True)
    args.output.mkdir(parents=True, exist_ok=True)
    print("Generating a demo scene (Cycles, 160x90, 16 samples) ...", flush=True)
    scene = make_scene(
        farm_dir / "project" / "demo.blend",
        frames=(1, args.frames),
        samples=16,
        resolution=(160, 90),
    )

    with LocalFarm(root=farm_dir, lease_seconds=30) as farm:
        farm.start_coordinator()
        print(f"Coordinator: {farm.url}   (dashboard: {farm.url}/, token: {farm.token})")
        for n in range(args.workers):
            farm.start_worker(f"demo-worker-{n + 1}")
        print(f"{args.workers} workers registered; submitting the job ...", flush=True)
        client = farm.client()
        files, sent = client.upload_project({"demo.blend": scene})
        output = args.output.resolve() / "frame_####"
        job = client.submit(
            {
                "name": "demo animation",
                "type": "blender-render",
                "blend": "demo.blend",
                "files": files,
                "blender_version": "3.4",
                "submitter": "make demo",
                "settings": {
                    "frames": f"1-{args.frames}",
                    "chunk_size": args.chunk_size,
                    "output": str(output),
                },
            }
        )
        print(
            f"Job {job['id']}: {args.frames} frames in chunks of {args.chunk_size},"
            f" uploaded {sent / 1e6:.2f} MB",
            flush=True,
        )
        started = time.monotonic()
        final = follow(client, job["id"], args.frames)
        took = time.monotonic() - started
        if final["status"] != "completed":
            print(f"The job ended {final['status']}: {final['status_reason']}")
            print(farm.describe())
            return 1
        landed = sorted(p.name for p in args.output.iterdir() if p.name.startswith("frame_"))
        print(
            f"Done in {took:.1f} s: {len(landed)} frames in {args.output}/"
            f" ({landed[0]} ... {landed[-1]})"
        )
        if args.keep_running:
            print("Farm still running; Ctrl+C to stop.")
            try:
                while True:
                    time.sleep(3600)
            except KeyboardInterrupt:
                pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
