"""Which render devices and engines a Blender can use, asked once at start-up,
and what else the worker reports to the farm about itself (memory, OS)."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import platform
import subprocess
from typing import Any

from worker_agent.in_blender.render_task import DEVICES
from worker_agent.probe import BlenderInfo

log = logging.getLogger(__name__)

_MARK = "FARM_DEVICES "
_ENGINES_MARK = "FARM_ENGINES "
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
engines = []
try:  # the built-in engines the enum lists statically, Workbench, then Python ones (Cycles)
    items = bpy.types.RenderSettings.bl_rna.properties["engine"].enum_items
    engines = [item.identifier for item in items] + ["BLENDER_WORKBENCH"]
    # bases such as bpy 5's HydraRenderEngine have no bl_idname of their own
    found = (getattr(cls, "bl_idname", None) for cls in bpy.types.RenderEngine.__subclasses__())
    engines += [name for name in found if isinstance(name, str) and name]
    if "cycles" in bpy.context.preferences.addons:  # bpy, the module: enabled, not registered
        engines.append("CYCLES")
except Exception:
    pass
engines = list(dict.fromkeys(engines))
print({_ENGINES_MARK!r} + json.dumps(engines), flush=True)
"""


def probe_devices(info: BlenderInfo, *, timeout: float = 120) -> list[str]:
    """Device kinds ("CPU", "CUDA", "OPTIX", ...); ["CPU"] when the probe fails."""
    return probe_render(info, timeout=timeout)[0]


def probe_render(info: BlenderInfo, *, timeout: float = 120) -> tuple[list[str], list[str]]:
    """(device kinds, render engines) in one Blender run: ["CPU"] and [] when the
    probe fails."""
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
        return ["CPU"], []
    return _marked(out, _MARK) or ["CPU"], _marked(out, _ENGINES_MARK)


def _marked(out: str, mark: str) -> list[str]:
    """The JSON list printed after `mark` (untrusted text: [] unless a list)."""
    for line in out.splitlines():
        if line.startswith(mark):
            try:
                found = json.loads(line[len(mark) :])
            except ValueError:
                return []
            return [str(x) for x in found][:64] if isinstance(found, list) else []
    return []


def capabilities(engines: list[str]) -> dict[str, Any]:
    """What the worker reports when it registers (models.WorkerCapabilities)."""
    out: dict[str, Any] = {"engines": engines, "os": platform.system().lower() or "unknown"}
    with contextlib.suppress(AttributeError, ValueError, OSError):  # not on every OS
        out["memory_mb"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    return out
