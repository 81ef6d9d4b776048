"""Command line of the worker agent, also used when it starts inside Blender.

python -m worker_agent [options]
blender -b --python-expr "import worker_agent.cli as w; w.main_in_blender()" -- [options]
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
from pathlib import Path
from types import FrameType

from coordinator.core.network import parse_ip
from coordinator.core.tags import check_tags
from worker_agent.agent import Agent, AgentConfig, default_name
from worker_agent.devices import capabilities, probe_render
from worker_agent.in_blender.render_task import DEVICES
from worker_agent.prefetch import GIB, PrefetchLimits
from worker_agent.probe import BlenderNotFound, NotABlender, find_blender, probe
from worker_agent.schedule import WorkHours
from worker_agent.warm import WarmLimits

log = logging.getLogger("worker_agent")


def default_cache_dir() -> Path:
    if sys.platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA", Path.home() / "AppData" / "Local"))
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base / "blender-farm" / "worker"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lanfarm-worker",
        description="A render worker for the LAN Blender farm: finds the coordinator, pulls"
        " tasks, renders them with Blender and uploads the frames.",
    )
    p.add_argument(
        "--coordinator",
        metavar="URL",
        default=os.environ.get("FARM_COORDINATOR"),
        help="coordinator address, e.g. http://render-boss:8765 (default: find it"
        " on the LAN by zeroconf, and keep looking until one appears)",
    )
    p.add_argument(
        "--farm-name",
        metavar="NAME",
        help="when several farms are announced on the LAN, join the one with this name"
        " (the coordinator's --name)",
    )
    p.add_argument(
        "--token",
        default=os.environ.get("FARM_TOKEN"),
        help="the farm token, printed by the coordinator at start (env FARM_TOKEN)",
    )
    which = p.add_mutually_exclusive_group()
    which.add_argument(
        "--blender",
        metavar="PATH",
        help="Blender binary to render with (default: $BLENDER, or `blender` on"
        " PATH, or this Blender when started inside one)",
    )
    which.add_argument(
        "--bpy-python",
        metavar="PATH",
        help="render with a Python that has the bpy module instead of a Blender"
        " binary (e.g. a venv with `pip install bpy`)",
    )
    p.add_argument(
        "--name",
        default=default_name(),
        help="how the farm shows this worker (default: the host name)",
    )
    p.add_argument(
        "--allow-scripts",
        action="store_true",
        help="trust .blend files: run their own Python scripts (drivers, rigs) and let"
        " compositor File Output nodes write where they point. Off by default: a"
        " submitted file could run anything, or write anywhere, on this machine",
    )
    p.add_argument(
        "--zeroconf-interface",
        metavar="IP",
        action="append",
        dest="interfaces",
        help="only look for the coordinator on this local address (repeatable)",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where downloaded project files and work folders live (default: %(default)s)",
    )
    p.add_argument("--threads", type=int, metavar="N", help="render threads (default: all cores)")
    p.add_argument(
        "--device",
        choices=DEVICES,
        type=str.upper,
        help="Cycles device to render with (default: what the .blend asks for)",
    )
    p.add_argument("--max-tasks", type=int, metavar="N", help="exit after N tasks")
    p.add_argument(
        "--burst",
        action="store_true",
        help="exit (code 0) as soon as one wait for work (--poll-wait) finds none",
    )
    p.add_argument(
        "--poll-wait",
        type=float,
        default=20.0,
        metavar="S",
        help="seconds each wait for work lasts (default: %(default)s)",
    )
    p.add_argument(
        "--warm-tasks",
        type=int,
        default=WarmLimits.max_tasks,
        metavar="N",
        help="keep Blender open with the job's scene between its tasks, and start a"
        " fresh one after N tasks (1: a fresh Blender for every task; default: %(default)s)",
    )
    p.add_argument(
        "--warm-memory",
        type=int,
        metavar="MB",
        help="start a fresh Blender when the open one uses more than MB megabytes of"
        " memory after a task (Linux; default: no limit)",
    )
    p.add_argument(
        "--no-standby",
        dest="standby",
        action="store_false",
        help="do not keep an empty Blender booted for the next task that needs a fresh"
        " one (saves its memory, about 230 MB for 3.4; each new job then waits for"
        " Blender to start)",
    )
    p.add_argument(
        "--persistent-data",
        action="store_true",
        help="let Cycles keep the scene's render data (BVH, textures) between the tasks"
        " of a warm Blender: faster on heavy static geometry; pixels were identical in"
        " the farm's tests, but it is Blender's own option with its own bugs, so off by"
        " default",
    )
    p.add_argument(
        "--hang-seconds",
        type=float,
        default=WarmLimits.silence_seconds,
        metavar="S",
        help="a Blender that prints nothing and uses no CPU for S seconds during a task"
        " is stopped as hung and the task fails (Linux; default: %(default)s)",
    )
    p.add_argument(
        "--tag",
        action="append",
        default=[],
        metavar="TAG",
        dest="tags",
        help="put the worker in a pool (repeat for several, or gpu,fast): jobs that require"
        " a tag go only to workers that have it; set at each start where given (else the"
        " worker keeps its tags: lanfarm workers tag WORKER TAGS changes them)",
    )
    p.add_argument(
        "--work-hours",
        metavar="HH:MM-HH:MM",
        help="take new tasks only in these local hours (e.g. 19:00-07:30 for an artist's"
        " desktop; several ranges separated by commas); a task held when they end is"
        " finished, then the worker rests and lets its Blender go (default: any hour)",
    )
    p.add_argument(
        "--prefetch-gb",
        type=float,
        default=PrefetchLimits.max_bytes / GIB,
        metavar="GB",
        help="while a task renders, fetch the files of the job this worker will most likely"
        " get next, up to GB gibibytes for one job and never leaving under"
        f" {PrefetchLimits.keep_free // GIB} GiB free on the cache's disk"
        " (0: never; default: %(default)g)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    return p


def main(argv: list[str] | None = None, *, inside_blender: str | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
    )
    for flag, value in (
        ("--threads", args.threads),
        ("--warm-tasks", args.warm_tasks),
        ("--warm-memory", args.warm_memory),
    ):
        if value is not None and value < 1:
            print(f"error: {flag} must be 1 or more", file=sys.stderr)
            return 2
    if args.prefetch_gb < 0:
        print("error: --prefetch-gb must be 0 or more", file=sys.stderr)
        return 2
    if args.hang_seconds <= 0:
        print("error: --hang-seconds must be more than 0", file=sys.stderr)
        return 2
    for interface in args.interfaces or ():
        if parse_ip(interface) is None:
            print(
                f"error: --zeroconf-interface {interface!r} is not an IP address; give an"
                " address of this machine, e.g. 192.168.1.20",
                file=sys.stderr,
            )
            return 2
    try:
        tags = check_tags(",".join(args.tags), "--tag")
        hours = WorkHours.parse(args.work_hours) if args.work_hours else None
    except ValueError as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    try:
        exe = args.bpy_python or find_blender(args.blender or inside_blender)
        info = probe(exe)
    except (BlenderNotFound, NotABlender) as ex:
        print(f"error: {ex}", file=sys.stderr)
        return 2
    log.info("rendering with Blender %s (%s, %s)", info.version, info.path, info.kind)
    devices, engines = probe_render(info)
    if args.device and args.device not in devices and args.device != "CPU":
        log.warning(
            "--device %s asked for, but this Blender only sees %s", args.device, ", ".join(devices)
        )
    agent = Agent(
        AgentConfig(
            coordinator=args.coordinator,
            token=args.token,
            name=args.name,
            blender=info,
            cache_dir=args.cache_dir,
            devices=devices,
            tags=tags,
            capabilities=capabilities(engines),
            device=args.device,
            threads=args.threads,
            allow_scripts=args.allow_scripts,
            zeroconf_interfaces=args.interfaces,
            farm_name=args.farm_name,
            poll_wait=args.poll_wait,
            max_tasks=args.max_tasks,
            burst=args.burst,
            persistent_data=args.persistent_data,
            work_hours=hours,
            prefetch=PrefetchLimits(max_bytes=int(args.prefetch_gb * GIB))
            if args.prefetch_gb > 0
            else None,
            warm=WarmLimits(
                max_tasks=args.warm_tasks,
                max_rss_mb=args.warm_memory,
                silence_seconds=args.hang_seconds,
                standby=args.standby,
            ),
        )
    )
    _install_signal_handlers(agent)
    try:
        return agent.run()
    except KeyboardInterrupt:
        agent.leave()
        log.info("stopped")
        return 0


def _install_signal_handlers(agent: Agent) -> None:
    """First signal: finish the task, then leave. Second: stop now, hand the task back."""

    def handle(signum: int, frame: FrameType | None) -> None:
        if agent.stopping.is_set() or agent.current is None:
            agent.shutdown(now=True)
            if agent.current is None:
                raise KeyboardInterrupt
            return
        log.info("finishing the current task, then exiting (signal again to stop now)")
        agent.shutdown(now=False)

    signal.signal(signal.SIGINT, handle)
    signal.signal(signal.SIGTERM, handle)


def main_in_blender() -> None:
    """Entry point inside Blender: options after `--`; renders with this Blender's binary."""
    import bpy  # type: ignore[import-not-found,unused-ignore]

    argv = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    sys.exit(main(argv, inside_blender=bpy.app.binary_path))
