"""Which render devices a Blender can use, asked once at start-up."""

from __future__ import annotations

import json
import logging
import subprocess

from worker_agent.in_blender.render_task import DEVICES
from worker_agent.probe import BlenderInfo

log = logging.getLogger(__name__)

_MARK = "FARM_DEVICES "
GPU_DEVICES = tuple(d for d in DEVICES if d != "CPU")
# Runs inside Blender 3.x-5.x: Cycles' preferences list devices per backend.
_PROBE = f"""
import bpy, json
found = ["CPU"]
try:
    prefs = bpy.context.preferences.addons["cycles"].preferences
    for kind in {list(GPU_DEVICES)!r}:
        try:
            if any(d.type == kind for d in prefs.get_devices_for_type(kind)):
                found.append(kind)
        except Exception:
            pass
except Exception:
    pass
print({_MARK!r} + json.dumps(found), flush=True)
"""


def probe_devices(info: BlenderInfo, *, timeout: float = 120) -> list[str]:
    """Device kinds ("CPU", "CUDA", "OPTIX", ...); ["CPU"] when the probe fails."""
    if info.kind == "bpy-module":
        command = [info.path, "-c", _PROBE]
    else:
        command = [
            info.path,
            "-b",
            "--factory-startup",
            "--python-exit-code",
            "1",
            "--python-expr",
            _PROBE,
        ]
    try:
        out = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            errors="replace",
        ).stdout
    except (OSError, subprocess.TimeoutExpired) as ex:
        log.warning("could not list render devices: %s", ex)
        return ["CPU"]
    for line in out.splitlines():
        if line.startswith(_MARK):
            try:
                devices = json.loads(line[len(_MARK) :])
            except ValueError:
                break
            return [str(d) for d in devices]
    return ["CPU"]
