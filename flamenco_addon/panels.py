"""The Render Properties panel: only draws. State comes from properties and runtime.STATE."""

from __future__ import annotations

import time
from typing import Any

import bpy

from . import farms, local_farm, panel_text, preferences, requirements, scan
from .runtime import STATE
from .submission import SubmitError, default_frames

STATUS_ICONS = {
    "queued": "SORTTIME",
    "active": "PLAY",
    "paused": "PAUSE",
    "completed": "CHECKMARK",
    "failed": "ERROR",
    "canceled": "CANCEL",
}


# Where the panel sits: high in Render Properties, right under the Render Engine.
# Blender puts an add-on's panels after its own (below Bake, with Cycles) and
# clamps bl_order to 0 or more, so only a place under the headerless engine
# panel comes first; without that panel (another Blender) it stays a panel of its own.
TOP_OF_RENDER = "RENDER_PT_context"


def place_high() -> None:
    """Called before registering: the farm panel goes under the engine panel."""
    if hasattr(bpy.types, TOP_OF_RENDER):
        RENDER_PT_farm.bl_parent_id = TOP_OF_RENDER


class RENDER_PT_farm(bpy.types.Panel):
    """The farm, the job and Submit, and one fixed place for the last result:
    everything an artist needs without opening a sub-panel, in a layout that
    does not jump (rows are greyed, not removed). Open by default, with its
    sub-panels (no DEFAULT_CLOSED)."""

    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_label = "Render Farm"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        STATE.panel_seen_at = time.monotonic()
        url = context.window_manager.farm.coordinator_in_use
        row = layout.row()
        row.label(text=f"Farm: {url}" if url else "No farm chosen", icon="NETWORK_DRIVE")
        sub = row.row()
        sub.enabled = bool(url)
        sub.operator("farm.open_dashboard", text="", icon="URL")
        draw_job_form(context, layout)
        for text in STATE.warnings:
            _wrapped(context, layout.column(align=True), text, "ERROR")
        draw_submit(context, layout)
        self.draw_result(context, layout.box())

    def draw_result(self, context: Any, box: Any) -> None:
        """The last result, whole and wrapped, until the next one replaces it."""
        notice = STATE.last_result
        col = box.column(align=True)
        if STATE.busy:
            col.label(text=f"Working: {STATE.busy}...", icon="SORTTIME")
        elif notice is None:
            col.label(text="Ready", icon="INFO")
        else:
            _wrapped(context, col, notice.text, "ERROR" if notice.error else "CHECKMARK")


def _wrapped(context: Any, col: Any, text: str, icon: str) -> None:
    width = context.region.width if context.region is not None else 300
    scale = context.preferences.system.ui_scale if context.preferences else 1.0
    for n, line in enumerate(panel_text.wrap(text, width, scale)):
        col.label(text=line, icon=icon if n == 0 else "BLANK1")


class RENDER_PT_farm_coordinator(bpy.types.Panel):
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_label = "Farm"
    bl_parent_id = "RENDER_PT_farm"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        prefs = preferences.get(context)
        layout.prop(prefs, "coordinator_mode", text="Use")
        if prefs.coordinator_mode == "URL":
            layout.prop(prefs, "coordinator_url")
        elif prefs.coordinator_mode == "AUTO":
            self.draw_found(context, layout)
        self.draw_local(context, layout, prefs)

    def draw_found(self, context: Any, layout: Any) -> None:
        box = layout.box()
        box.label(text="Farms on the network", icon="WORLD")
        if not getattr(bpy.app, "online_access", True):
            box.label(text="Online access is off: only this computer is searched", icon="INFO")
        if STATE.discovery_error:
            box.label(text=STATE.discovery_error, icon="ERROR")
        listed = farms.rows(STATE.farms, scan.local_url(context))
        if not listed:
            box.label(text="Looking for farms...", icon="VIEWZOOM")
        chosen = context.window_manager.farm.coordinator_in_use
        for farm in listed:
            row = box.row()
            row.enabled = farm.reachable is not False  # shown, never chosen
            icon = "RADIOBUT_ON" if farm.url == chosen else "RADIOBUT_OFF"
            op = row.operator("farm.use_coordinator", text=farm.label, icon=icon)
            op.url = farm.url

    def draw_local(self, context: Any, layout: Any, prefs: Any) -> None:
        box = layout.box()
        state = local_farm.status(preferences.data_dir(prefs))
        if not state.running:
            box.operator("farm.start_local_farm", icon="PLAY")
            box.prop(prefs, "local_worker")
            return
        col = box.column(align=True)
        col.label(text="This computer runs a farm", icon="CHECKMARK")
        col.label(text=state.url, icon="BLANK1")
        row = box.row()
        row.label(text=f"Token: {panel_text.masked(state.token)}")
        row.operator("farm.copy_token", text="", icon="COPYDOWN")
        col = box.column(align=True)
        col.operator("farm.copy_worker_command", text="Copy Worker Command", icon="COPYDOWN")
        row = col.row(align=True)
        if state.worker_pid is not None:
            row.operator("farm.stop_local_farm", text="Stop Worker", icon="X").which = "WORKER"
        else:
            row.operator("farm.start_local_farm", text="Start Worker", icon="PLAY").worker = "YES"
        row.operator("farm.stop_local_farm", text="Stop Farm", icon="CANCEL").which = "ALL"


def draw_job_form(context: Any, layout: Any) -> None:
    col = layout.column()
    col.use_property_split = True
    form = context.scene.farm_job
    col.prop(form, "job_type")
    if _has_placeholder():
        col.prop(form, "job_name", placeholder=_placeholder_name())
    else:
        col.prop(form, "job_name")
    _draw_scene_settings(context, col, form)
    for item in form.settings:
        _draw_setting(col, item)
    col.prop(form, "priority")
    try:  # what it asks of its workers, set in the Workers sub-panel
        wanted = requirements.describe(*form.requirements())
    except SubmitError as ex:
        col.label(text=str(ex), icon="ERROR")
    else:
        if wanted:
            col.label(text=wanted, icon="FILTER")


class RENDER_PT_farm_workers(bpy.types.Panel):
    """Which workers may run the job: pools (tags) and what they must have."""

    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_label = "Workers"
    bl_parent_id = "RENDER_PT_farm"

    def draw(self, context: Any) -> None:
        col = _layout(self).column()
        col.use_property_split = True
        form = context.scene.farm_job
        col.prop(form, "require_tags")
        for name in ("need_device", "need_engine", "need_memory_gb", "need_os"):
            col.prop(form, name)


def _draw_scene_settings(context: Any, layout: Any, form: Any) -> None:
    """What the job type takes from the scene, shown where the artist sets it."""
    scene = context.scene
    filled = form.filled()
    if "frames" in filled:
        try:
            frames = default_frames(scan.snapshot(scene))
        except SubmitError:
            frames = "nothing to render"
        if _has_placeholder():
            layout.prop(form, "frames", placeholder=frames)
        else:
            layout.prop(form, "frames")
            if not form.frames:
                layout.label(text=f"Scene range: {frames}")
    if "chunk_size" in filled:
        layout.prop(form, "chunk_size")
    if "samples" in filled and hasattr(scene, "cycles"):
        layout.prop(scene.cycles, "samples", text="Samples")
    if "output" in filled:
        layout.prop(scene.render, "filepath", text="Output")


def _draw_setting(layout: Any, item: Any) -> None:
    attr = {
        "int": "int_value",
        "float": "float_value",
        "bool": "bool_value",
        "choice": "choice_value",
    }.get(item.kind, "str_value")
    if item.optional:  # ticked: sent; unticked: the job type's own default
        row = layout.row(align=True, heading=item.label)
        row.prop(item, "use_value", text="")
        value = row.row(align=True)
        value.active = item.use_value
        value.prop(item, attr, text="")
        return
    layout.prop(item, attr, text=item.label)


def draw_submit(context: Any, layout: Any) -> None:
    """Submit, or the running submission's progress and its Cancel, in one row."""
    farm = context.window_manager.farm
    row = layout.row(align=True)
    row.scale_y = 1.3
    if STATE.submit is None:
        row.enabled = bool(farm.coordinator_in_use)
        row.operator("farm.submit_job", icon="EXPORT")
        return
    if hasattr(row, "progress"):  # Blender 4.0+
        row.progress(factor=farm.progress, text=farm.progress_text or "Submitting...")
    else:
        text = farm.progress_text or "Submitting..."
        row.prop(farm, "progress_percent", text=text, slider=True)
    row.operator("farm.cancel_submit", text="", icon="CANCEL")


def _layout(panel: Any) -> Any:
    """The panel's layout; Blender always sets it while drawing."""
    layout = panel.layout
    assert layout is not None
    return layout


def _has_placeholder() -> bool:
    return bool(bpy.app.version >= (4, 1, 0))


def _placeholder_name() -> str:
    return panel_text.default_job_name(bpy.data.filepath)


class FARM_UL_jobs(bpy.types.UIList):
    def draw_item(
        self,
        context: Any,
        layout: Any,
        data: Any,
        item: Any,
        icon: Any,
        active_data: Any,
        active_property: Any,
        index: Any = 0,
        flt_flag: Any = 0,
    ) -> None:
        row = layout.row()
        row.label(text=f"{item.job_id}: {item.name}", icon=STATUS_ICONS.get(item.status, "DOT"))
        sub = row.row()
        sub.alignment = "RIGHT"
        sub.label(text=f"{item.status} {item.progress:.0f}%")


class RENDER_PT_farm_jobs(bpy.types.Panel):
    bl_space_type = "PROPERTIES"
    bl_region_type = "WINDOW"
    bl_context = "render"
    bl_label = "Jobs"
    bl_parent_id = "RENDER_PT_farm"

    def draw(self, context: Any) -> None:
        layout = _layout(self)
        farm = context.window_manager.farm
        self.want_jobs(context)
        row = layout.row(align=True)
        row.prop(farm, "scope", expand=True)
        row.operator("farm.refresh_jobs", text="", icon="FILE_REFRESH")
        row = layout.row(align=True)
        row.prop(farm, "status_filter", text="")
        row.prop(farm, "type_filter", text="", icon="NODETREE")
        row.prop(farm, "name_filter", text="", icon="VIEWZOOM")
        if STATE.jobs.error:
            _wrapped(context, layout.column(align=True), STATE.jobs.error, "ERROR")
        layout.template_list("FARM_UL_jobs", "", farm, "jobs", farm, "jobs_index", rows=4)
        if 0 <= farm.jobs_index < len(farm.jobs):
            self.draw_actions(context, layout, farm.jobs[farm.jobs_index])

    def want_jobs(self, context: Any) -> None:
        farm = context.window_manager.farm
        filters = {
            "status": "" if farm.status_filter == "ALL" else farm.status_filter,
            "type": farm.type_filter.strip(),
            "name": farm.name_filter.strip(),
        }
        try:
            url, token = scan.coordinator(context)
        except SubmitError:
            url, token = "", ""  # no farm: no rows, not the last farm's
        blend = bpy.data.filepath
        mine = farm.scope == "FILE"
        STATE.want_jobs(url, token, {k: v for k, v in filters.items() if v}, blend=blend, mine=mine)

    def draw_actions(self, context: Any, layout: Any, job: Any) -> None:
        """The same buttons for every job, greyed where they make no sense now."""
        col = layout.column(align=True)
        detail = panel_text.job_detail(job.status, job.reason, job.eta)
        _wrapped(context, col, detail, "INFO")
        sync = STATE.sync_status.get(job.job_id)
        if sync:
            col.label(text=f"Results: {sync}", icon="IMPORT")
        offered = set(filter(None, job.actions.split(",")))
        grid = layout.grid_flow(columns=2, even_columns=True, align=True)
        for action, icon in (
            ("cancel", "CANCEL"),
            ("resume" if job.status == "paused" else "pause", "PAUSE"),
            ("requeue", "FILE_REFRESH"),
            ("regenerate", "RECOVER_LAST"),
        ):
            cell = grid.row(align=True)
            cell.enabled = action in offered
            op = cell.operator("farm.job_action", text=action.capitalize(), icon=icon)
            op.job_id, op.action = job.job_id, action
        cell = grid.row(align=True)
        cell.enabled = bool(job.output)
        cell.operator("farm.open_output", text="Output", icon="FILE_FOLDER").folder = job.output
        grid.operator("farm.open_dashboard", text="Dashboard", icon="URL")


CLASSES = (
    RENDER_PT_farm,
    RENDER_PT_farm_coordinator,
    RENDER_PT_farm_workers,
    FARM_UL_jobs,
    RENDER_PT_farm_jobs,
)
