"""Farm overhead: a real 24-frame render on a local two-worker farm against
plain `blender -b -a`, with the same total number of render threads.

    python bench/overhead.py [--frames 24] [--chunk-size 6] [--runs 3]

Side by side in one run: plain Blender with --threads 2, then the farm with
two workers at --threads 1 each (submit -> last frame delivered). The ratio
is farm wall time / plain wall time.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import report
from tests.support.blendgen import DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm


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


def farm_render(farm: LocalFarm, blend: Path, out: Path, frames: int, chunk: int) -> float:
    client = farm.client()
    t0 = time.perf_counter()
    files, _ = client.upload_project({"shot.blend": blend})
    job = client.submit(
        {
            "name": "overhead",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": files,
            "blender_version": "3.4",
            "settings": {
                "frames": f"1-{frames}",
                "chunk_size": chunk,
                "output": str(out / "frame_####"),
            },
        }
    )
    done = farm.wait_for_job(job["id"], timeout=1800)
    assert done["status"] == "completed", done["status_reason"]
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--chunk-size", type=int, default=6)
    parser.add_argument("--samples", type=int, default=64)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        blend = make_scene(
            root / "shot.blend",
            frames=(1, args.frames),
            samples=args.samples,
            resolution=(320, 180),
        )
        with LocalFarm(root=root / "farm", lease_seconds=60) as farm:
            farm.start_coordinator("--no-zeroconf")
            farm.start_worker("w1", "--threads", "1", blender=DEBIAN_BLENDER)
            farm.start_worker("w2", "--threads", "1", blender=DEBIAN_BLENDER)
            for n in range(args.runs):
                plain_s = plain(blend, root / f"plain{n}", args.frames, threads=2)
                farm_s = farm_render(farm, blend, root / f"farm{n}", args.frames, args.chunk_size)
                runs.append({"plain_s": plain_s, "farm_s": farm_s, "ratio": farm_s / plain_s})
                print(
                    f"run {n + 1}: plain {plain_s:.1f} s, farm {farm_s:.1f} s,"
                    f" ratio {farm_s / plain_s:.3f}",
                    flush=True,
                )
    report(
        f"overhead: {args.frames} frames, 320x180, {args.samples} samples,"
        f" chunks of {args.chunk_size}",
        runs,
    )


if __name__ == "__main__":
    main()
