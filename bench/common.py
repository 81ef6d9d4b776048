"""Shared bits of the benchmarks: process stats and a median summary."""

from __future__ import annotations

import os
import platform
import statistics
from pathlib import Path


def proc_stats(pid: int) -> dict[str, float]:
    """CPU seconds used and peak resident memory of a process (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0.0
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            rss = int(line.split()[1]) / 1024
    return {"cpu_seconds": cpu, "rss_mb": rss}


def machine() -> str:
    cpus = os.cpu_count()
    mem = ""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = f", {int(line.split()[1]) / 1024 / 1024:.0f} GiB"
    except OSError:
        pass
    return f"{platform.machine()}, {cpus} CPUs{mem}, Python {platform.python_version()}"


def report(title: str, runs: list[dict[str, float]]) -> None:
    print(f"\n{title} — {machine()}")
    for key in runs[0]:
        values = [r[key] for r in runs]
        print(
            f"  {key:24s} median {statistics.median(values):10.3f}   runs: "
            + ", ".join(f"{v:.3f}" for v in values)
        )
