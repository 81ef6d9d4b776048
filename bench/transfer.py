"""Project upload: first upload of a 200 MB project against a plain file copy,
and a re-submit of the unchanged project (which must upload 0 bytes).

    python bench/transfer.py [--mb 200] [--runs 3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import report
from tests.support.localfarm import LocalFarm


def make_project(root: Path, megabytes: int) -> dict[str, Path]:
    """A .blend-sized file plus textures: incompressible random bytes."""
    files = {}
    sizes = [megabytes // 4] + [megabytes * 3 // 4 // 15] * 15
    for n, size in enumerate(sizes):
        rel = "shot.blend" if n == 0 else f"textures/tex_{n:02d}.exr"
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for _ in range(size):
                f.write(os.urandom(1 << 20))
        files[rel] = path
    return files


def one_run(megabytes: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp, LocalFarm(root=Path(tmp) / "farm") as farm:
        files = make_project(Path(tmp) / "project", megabytes)
        total = sum(p.stat().st_size for p in files.values())
        farm.start_coordinator("--no-zeroconf")
        client = farm.client()
        t0 = time.perf_counter()
        shutil.copytree(Path(tmp) / "project", Path(tmp) / "copy")
        os.sync()
        t1 = time.perf_counter()
        _, sent_first = client.upload_project(files)
        os.sync()
        t2 = time.perf_counter()
        _, sent_again = client.upload_project(files)
        t3 = time.perf_counter()
        assert sent_first == total and sent_again == 0
        return {
            "project_mb": total / 1e6,
            "plain_copy_s": t1 - t0,
            "first_upload_s": t2 - t1,
            "upload_vs_copy": (t2 - t1) / (t1 - t0),
            "resubmit_s": t3 - t2,
            "resubmit_bytes": float(sent_again),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mb", type=int, default=200)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    runs = []
    for n in range(args.runs):
        runs.append(one_run(args.mb))
        print(f"run {n + 1}: " + ", ".join(f"{k}={v:.3f}" for k, v in runs[-1].items()), flush=True)
    report(f"transfer: {args.mb} MB project over loopback", runs)


if __name__ == "__main__":
    main()
