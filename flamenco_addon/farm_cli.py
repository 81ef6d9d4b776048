"""A farm machine with only Blender: `farm_worker` and `farm_coordinator`. No `bpy` here.

With the extension installed (Blender 4.2+), addon.py registers both as
Blender command-line commands:

    blender -b -c farm_worker [worker options]         renders with this Blender
    blender -b -c farm_coordinator [serve options]     runs the farm's coordinator

On Blender 3.x the legacy add-on offers the same through one line (docs/admin.md):

    blender -b --python-expr "import addon_utils as a; a.enable('lan_render_farm');
        import lan_render_farm.addon as f; f.cli_main()" -- farm_worker [worker options]

Either way the bundled packages run with Blender's own Python as a child
process, as the local farm does: the worker's and the server's threads never
run inside Blender, and Blender only waits for it and passes on Ctrl+C and
termination.
"""

from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Sequence
from types import FrameType

from .pipe import child_env

# Blender wants command ids that are Python identifiers: no "-"
WORKER, COORDINATOR = "farm_worker", "farm_coordinator"
USAGE = f"usage: blender -b -c {{{WORKER},{COORDINATOR}}} [options]  (--help for each)"


def worker_command(argv: Sequence[str], *, python: str, blender: str) -> list[str]:
    """The worker, rendering with this Blender unless told another."""
    command = [python, "-m", "worker_agent", *argv]
    chosen = any(a.split("=", 1)[0] in ("--blender", "--bpy-python") for a in argv)
    if not chosen and "-h" not in argv and "--help" not in argv:
        command += ["--blender", blender] if blender else ["--bpy-python", python]
    return command


def coordinator_command(argv: Sequence[str], *, python: str) -> list[str]:
    return [python, "-m", "coordinator", "serve", *argv]


def run(command: Sequence[str], *, pythonpath: Sequence[str]) -> int:
    """Run it to its end and return its exit code; Ctrl+C and SIGTERM reach it."""
    proc = subprocess.Popen(list(command), env=child_env(pythonpath))

    def forward(signum: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(OSError):
            proc.send_signal(signum)

    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while True:
            try:
                return proc.wait()
            except KeyboardInterrupt:  # forwarded; it decides how to stop
                continue
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)


def command_for(name: str, argv: Sequence[str], *, python: str, blender: str) -> list[str] | None:
    if name == WORKER:
        return worker_command(argv, python=python, blender=blender)
    if name == COORDINATOR:
        return coordinator_command(argv, python=python)
    return None


def run_named(args: Sequence[str], *, python: str, blender: str, pythonpath: Sequence[str]) -> int:
    """`farm_worker ...` or `farm_coordinator ...`: Blender 3.x's way in (addon.cli_main)."""
    name, rest = (args[0], list(args[1:])) if args else ("", [])
    command = command_for(name, rest, python=python, blender=blender)
    if command is None:
        print(USAGE, file=sys.stderr)
        return 2
    return run(command, pythonpath=pythonpath)
