"""Dispatch and cancel latency with real worker agents and a real Blender.

    python bench/latency.py [--runs 5]

dispatch: submit a job -> its first task is claimed by an idle worker (seen
on the coordinator's live event stream, as a dashboard sees it).
cancel: cancel a job while Blender renders it -> that Blender process is gone.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from bench.common import report
from tests.support.blendgen import make_scene
from tests.support.localfarm import LocalFarm
from tests.support.processes import pid_alive, wait_for_blender


def first_claim_after_submit(farm: LocalFarm) -> float:
    """Seconds from sending the submit to the event that a worker took its task."""
    seen = threading.Event()
    job_box: dict[str, int] = {}
    stamp: dict[str, float] = {}
    ready = threading.Event()

    def listen() -> None:
        with requests.get(
            f"{farm.url}/api/v1/events",
            stream=True,
            timeout=30,
            headers={"Authorization": f"Bearer {farm.token}"},
        ) as resp:
            ready.set()
            for line in resp.iter_lines(decode_unicode=True):
                if not line or not line.startswith("data: "):
                    continue
                event = json.loads(line[6:])
                if (
                    event["type"] == "task"
                    and "job_id" in job_box
                    and event.get("job_id") == job_box["job_id"]
                ):
                    stamp["at"] = time.perf_counter()
                    seen.set()
                    return

    thread = threading.Thread(target=listen, daemon=True)
    thread.start()
    ready.wait(10)
    time.sleep(0.2)
    client = farm.client()
    started = time.perf_counter()
    job = client.submit(
        {"name": "dispatch", "type": "sleep", "settings": {"task_count": 1, "seconds": 0.2}}
    )
    job_box["job_id"] = job["id"]
    if not seen.wait(30):
        raise TimeoutError("no task event")
    farm.wait_for_job(job["id"], timeout=30)
    return stamp["at"] - started


def cancel_to_blender_gone(farm: LocalFarm, blend: Path, out: Path) -> float:
    client = farm.client()
    files, _ = client.upload_project({"slow.blend": blend})
    job = client.submit(
        {
            "name": "cancel",
            "type": "blender-render",
            "blend": "slow.blend",
            "files": files,
            "settings": {"frames": "1", "chunk_size": 1, "output": str(out / "f_####")},
        }
    )
    pid = wait_for_blender(farm, timeout=60)
    time.sleep(1.0)  # well into the render
    started = time.perf_counter()
    client.job_action(job["id"], "cancel")
    while pid_alive(pid):
        time.sleep(0.005)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    runs = []
    with tempfile.TemporaryDirectory() as tmp, LocalFarm(root=Path(tmp)) as farm:
        blend = make_scene(
            Path(tmp) / "slow.blend", frames=(1, 1), samples=4096, resolution=(320, 240)
        )
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("w1", blender="/usr/bin/blender")
        time.sleep(1)
        for n in range(args.runs):
            dispatch = first_claim_after_submit(farm)
            cancel = cancel_to_blender_gone(farm, blend, Path(tmp) / f"out{n}")
            runs.append({"dispatch_s": dispatch, "cancel_s": cancel})
            print(
                f"run {n + 1}: dispatch {dispatch * 1000:.1f} ms, cancel {cancel * 1000:.0f} ms",
                flush=True,
            )
    report("latency: one idle worker agent, Blender 3.4", runs)


if __name__ == "__main__":
    main()
