"""Registration of the add-on's classes, handlers and the UI refresh timer (imports bpy)."""

from __future__ import annotations

import logging
from typing import Any

import bpy
from bpy.app.handlers import persistent

from . import operators, panels, preferences, properties, scan
from .runtime import STATE
from .submission import SubmitError
from .sync import Syncer

log = logging.getLogger(__name__)

CLASSES = (*preferences.CLASSES, *properties.CLASSES, *operators.CLASSES, *panels.CLASSES)
TICK = 0.5  # seconds between UI refreshes from the background threads


def _token_for(url: str) -> str:
    try:
        return scan.coordinator(bpy.context, url=url)[1]
    except (SubmitError, RuntimeError):
        return ""


@persistent
def _on_load(_dummy: Any = None) -> None:
    """Resume downloading this file's farm frames when it is opened again."""
    syncer, blend = STATE.syncer, bpy.data.filepath
    if syncer is not None and blend and syncer.records.for_blend(blend):
        syncer.watch(blend)


def _tick() -> float:
    """Copy what the threads found into properties, and redraw when it changed."""
    try:
        _refresh(bpy.context)
    except Exception:  # a timer that raises is never called again
        log.exception("farm panel refresh failed")
    return TICK


def _refresh(context: Any) -> None:
    wm = context.window_manager
    prefs = preferences.get(context)
    if STATE.finder is not None and prefs.coordinator_mode == "AUTO":
        from .finder import env_interfaces

        online = bool(getattr(bpy.app, "online_access", True))
        STATE.finder.start(online=online, interfaces=env_interfaces())
    try:
        url, token = scan.coordinator(context)
    except SubmitError:
        url, token = "", ""
    if wm.farm.coordinator_in_use != url:
        wm.farm.coordinator_in_use = url
    types = STATE.job_types.get(url, token) if url and operators.online_allowed(url) else []
    if not STATE.any_changed():
        return
    _load_form(context, types)
    _copy_jobs(wm.farm)
    for window in wm.windows:
        for area in window.screen.areas:
            if area.type == "PROPERTIES":
                area.tag_redraw()


def _load_form(context: Any, types: list[dict[str, Any]]) -> None:
    from .submission import drawn_settings, scene_settings_of

    form = context.scene.farm_job
    for job_type in types:
        if job_type["name"] == form.job_type:
            filled = scene_settings_of(job_type)
            properties.load_schema(form, job_type["name"], drawn_settings(job_type), filled)


def _copy_jobs(farm: Any) -> None:
    jobs = STATE.jobs.view.jobs
    if farm.scope == "FILE":
        mine = {r.job_id for r in operators.records().for_blend(bpy.data.filepath)}
        jobs = [j for j in jobs if j["id"] in mine]
    selected = farm.jobs[farm.jobs_index].job_id if 0 <= farm.jobs_index < len(farm.jobs) else -1
    farm.jobs.clear()
    for job in jobs:
        item = farm.jobs.add()
        item.job_id, item.name, item.status = job["id"], job["name"], job["status"]
        item.job_type, item.progress = job["type"], 100.0 * float(job.get("progress") or 0)
        item.reason = job.get("status_reason") or ""
        output = (job.get("settings") or {}).get("output") or ""
        item.output = operators.output_dir(output) if output else ""
        if job["id"] == selected:
            farm.jobs_index = len(farm.jobs) - 1


def _start_threads() -> None:
    try:
        from .finder import Finder

        STATE.finder = Finder()
    except ImportError as ex:  # no zeroconf on this platform
        log.info("no coordinator discovery: %s", ex)
    STATE.syncer = Syncer(operators.records(), _token_for)


def register() -> None:
    for cls in CLASSES:
        bpy.utils.register_class(cls)
    properties.register()
    bpy.app.handlers.load_post.append(_on_load)
    if not bpy.app.background:
        _start_threads()
        bpy.app.timers.register(_tick, first_interval=TICK, persistent=True)
        bpy.app.timers.register(_on_load, first_interval=1.0)


def unregister() -> None:
    if bpy.app.timers.is_registered(_tick):
        bpy.app.timers.unregister(_tick)
    if _on_load in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load)
    STATE.shutdown()
    STATE.finder, STATE.syncer = None, None
    properties.unregister()
    for cls in reversed(CLASSES):
        bpy.utils.unregister_class(cls)
