"""Registration of the add-on's classes, handlers and the UI refresh timer (imports bpy)."""

from __future__ import annotations

import logging
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import bpy
from bpy.app.handlers import persistent

from . import farm_cli, operators, panels, preferences, properties, runtime, scan
from .finder import env_interfaces
from .packing import plan_pack, remove_stale_packs
from .panel_text import eta_text, offered, submit_warnings
from .pipe import Helper, HelperGone
from .runtime import STATE
from .submission import SubmitError

log = logging.getLogger(__name__)

CLASSES = (*preferences.CLASSES, *properties.CLASSES, *operators.CLASSES, *panels.CLASSES)
TICK = 0.25  # seconds between reads of the helper's answers and UI refreshes
BUDGET = 0.005  # seconds a tick may spend reading them


def _token_for(url: str) -> str:
    try:
        return scan.coordinator(bpy.context, url=url)[1]
    except (SubmitError, RuntimeError):
        return ""


@persistent
def _on_load(_dummy: Any = None) -> None:
    """Resume downloading this file's farm frames when it is opened again."""
    blend = bpy.data.filepath
    if blend and operators.records().for_blend(blend):
        STATE.sync_blends.add(os.path.normcase(os.path.abspath(blend)))


def _tick() -> float:
    """Read what the helper said, ask it for what is due, redraw when it changed."""
    try:
        _refresh(bpy.context)
    except Exception:  # a timer that raises is never called again
        log.exception("farm panel refresh failed")
    return TICK


def _refresh(context: Any) -> None:
    STATE.pump(BUDGET)
    wm = context.window_manager
    prefs = preferences.get(context)
    online = bool(getattr(bpy.app, "online_access", True))
    try:
        if prefs.coordinator_mode == "AUTO":
            STATE.discover(online, env_interfaces())
        url, token = _in_use(context)
        if wm.farm.coordinator_in_use != url:
            wm.farm.coordinator_in_use = url
        types = STATE.types_for(url, token) if url and operators.online_allowed(url) else []
        now = time.monotonic()
        _check_before_submit(context, now, url, token)
        STATE.poll_jobs(now)
        STATE.sync(now, operators.records().path, _sync_tokens())
    except HelperGone as ex:
        log.warning("farm helper can't start: %s", ex)
        types = []
    if not STATE.changed:
        return
    STATE.changed = False
    _load_form(context, types)
    _copy_jobs(wm.farm)
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "PROPERTIES":
                area.tag_redraw()


WARN_EVERY = 3.0  # seconds between checks of what Submit would refuse


def _check_before_submit(context: Any, now: float, url: str, token: str) -> None:
    """Warnings above Submit, while the panel is shown: cheap enough every few seconds
    (the file list is what Submit itself reads)."""
    if now < STATE.warnings_due or now - STATE.panel_seen_at > runtime.VISIBLE_FOR:
        return
    STATE.warnings_due = now + WARN_EVERY
    missing = []
    if bpy.data.filepath:
        missing = plan_pack(bpy.data.filepath, scan.dependencies()).missing
    warnings = submit_warnings(scan.snapshot(context.scene), url=url, token=token, missing=missing)
    if warnings != STATE.warnings:
        STATE.warnings, STATE.changed = warnings, True


def _in_use(context: Any) -> tuple[str, str]:
    try:
        return scan.coordinator(context)
    except SubmitError:
        return "", ""


def _sync_tokens() -> dict[str, str]:
    if not STATE.sync_blends:
        return {}
    urls = {r.coordinator for r in operators.records().load() if not r.done and not r.deliver}
    return {url: _token_for(url) for url in urls}


def _load_form(context: Any, types: list[dict[str, Any]]) -> None:
    from .submission import drawn_settings, scene_settings_of

    form = context.scene.farm_job
    for job_type in types:
        if job_type["name"] == form.job_type:
            filled = scene_settings_of(job_type)
            properties.load_schema(form, job_type["name"], drawn_settings(job_type), filled)


def _copy_jobs(farm: Any) -> None:
    """The rows of the Jobs list: the helper already chose this file's (by origin)
    when the artist shows "This file"; actions are offered on this file's jobs, or
    on any job once the artist chose "All"."""
    jobs, origin = STATE.jobs.jobs, STATE.jobs.origin
    selected = farm.jobs[farm.jobs_index].job_id if 0 <= farm.jobs_index < len(farm.jobs) else -1
    farm.jobs.clear()
    for job in jobs:
        item = farm.jobs.add()
        item.job_id, item.name, item.status = job["id"], job["name"], job["status"]
        item.job_type, item.progress = job["type"], 100.0 * float(job.get("progress") or 0)
        item.reason = job.get("status_reason") or ""
        item.own = bool(origin) and job.get("origin") == origin
        item.actions = ",".join(sorted(offered(job))) if item.own or farm.scope == "ALL" else ""
        item.eta = eta_text(job.get("eta_seconds"))
        output = (job.get("settings") or {}).get("output") or ""
        item.output = operators.output_dir(output) if output else ""
        if job["id"] == selected:
            farm.jobs_index = len(farm.jobs) - 1


def _helper() -> Helper:
    return Helper(
        python=operators.blender_python(),
        pythonpath=scan.python_path(),
        log_path=preferences.user_dir() / "helper.log",
    )


_CLI_HANDLES: list[Any] = []  # what register_cli_command returned, for unregister


def _cli(name: str) -> Callable[[list[str]], int]:
    def execute(argv: list[str]) -> int:
        return farm_cli.run_named(
            [name, *argv],
            python=operators.blender_python(),
            blender=bpy.app.binary_path,
            pythonpath=scan.python_path(),
        )

    return execute


def cli_main() -> None:
    """Blender 3.x-4.1's way to the farm commands: the command and its options after
    `--` (`blender -b --python-expr "...; f.cli_main()" -- farm_worker ...`)."""
    args = sys.argv[sys.argv.index("--") + 1 :] if "--" in sys.argv else []
    sys.exit(_cli(args[0] if args else "")(args[1:]))


def _register_cli() -> None:
    """`blender -b -c farm_worker` / `farm_coordinator` (Blender 4.2+)."""
    register = getattr(bpy.utils, "register_cli_command", None)
    if register is not None:
        for name in (farm_cli.WORKER, farm_cli.COORDINATOR):
            try:
                _CLI_HANDLES.append(register(name, _cli(name)))
            except (ValueError, RuntimeError) as ex:  # the add-on works without them
                log.warning("can't register the command %s: %s", name, ex)


def register() -> None:
    panels.place_high()
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    _register_cli()
    properties.register()
    bpy.app.handlers.load_post.append(_on_load)
    STATE.helper = _helper()
    removed = remove_stale_packs(Path(tempfile.gettempdir()))
    if removed:
        log.info("removed %d pack folder(s) left by an earlier session", len(removed))
    if not bpy.app.background:
        bpy.app.timers.register(_tick, first_interval=TICK, persistent=True)
        bpy.app.timers.register(_on_load, first_interval=1.0)


def unregister() -> None:
    while _CLI_HANDLES:
        bpy.utils.unregister_cli_command(_CLI_HANDLES.pop())
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    STATE.shutdown()
    STATE.helper = None
    properties.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
