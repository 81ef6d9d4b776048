"""Processes seen from /proc (Linux): which Blender a worker started, and
whether a process is still alive, for tests and benchmarks that kill or cancel."""

from __future__ import annotations

import os
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


def wait_for_blender(farm: LocalFarm, *, timeout: float, opening: str | None = None) -> int:
    """The pid of a render Blender started by one of the farm's workers.

    opening: only a Blender whose command line opens a .blend of that file name
    (a worker keeps the Blender of its last job warm: without it, that idle one
    may be found instead of the one rendering the task of interest)."""
    deadline = time.monotonic() + timeout
    workers = {w.process.pid for w in farm.workers if w.process.poll() is None}
    while time.monotonic() < deadline:
        children = descendants_of(workers)
        for pid in blender_pids():
            if pid in children and (opening is None or opening in blend_names(pid)):
                return pid
        time.sleep(0.05)
    raise TimeoutError(f"no Blender started:\n{farm.describe()}")


def blend_names(pid: int) -> set[str]:
    """The file names of the .blend files on a process's command line."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return set()
    return {Path(os.fsdecode(arg)).name for arg in argv if arg.endswith(b".blend")}


def pid_alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie counts as gone)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
