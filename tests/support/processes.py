"""Processes seen from /proc (Linux): which Blender a worker started, and
whether a process is still alive, for tests and benchmarks that kill or cancel."""

from __future__ import annotations

import time
from pathlib import Path

from tests.support.localfarm import LocalFarm


def blender_pids() -> list[int]:
    """Every process whose command is blender."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                comm = (entry / "comm").read_text().strip()
            except OSError:
                continue
            if comm == "blender":
                pids.append(int(entry.name))
    return pids


def descendants_of(parents: set[int]) -> set[int]:
    """The direct children of `parents`."""
    found: set[int] = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid in parents:
            found.add(int(entry.name))
    return found


def wait_for_blender(farm: LocalFarm, *, timeout: float) -> int:
    """The pid of a render Blender started by one of the farm's workers."""
    deadline = time.monotonic() + timeout
    workers = {w.process.pid for w in farm.workers if w.process.poll() is None}
    while time.monotonic() < deadline:
        children = descendants_of(workers)
        for pid in blender_pids():
            if pid in children:
                return pid
        time.sleep(0.05)
    raise TimeoutError(f"no Blender started:\n{farm.describe()}")


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
