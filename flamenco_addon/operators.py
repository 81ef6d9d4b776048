"""Operators: thin. Gather from Blender, call one core function, report in words.

`execute()` is blocking and works in `blender -b` and the bpy module, where
timers never fire; `invoke()` + `modal()` keep the UI live while the add-on's
helper process uploads, with Esc or the Cancel button to stop it. No thread
of ours runs inside Blender: what waits on the network is in the helper
(service.py), whose answers are read on the main thread (runtime.STATE).
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any, Literal

import bpy

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.protocol import TERMINAL_JOB_STATUSES

from . import local_farm, preferences, scan, submitting
from .background import Message, MsgCancelled, MsgDone, ProgressPrinter
from .packing import new_pack_folder, plan_pack
from .panel_text import default_job_name, stop_asks
from .pipe import JSON, HelperGone
from .runtime import STATE, LastResult, result_of
from .submission import (
    JobForm,
    SubmitError,
    coordinator_delivers,
    is_local_url,
    job_settings,
    output_dir,
)
from .sync import JobRecords, sync_job

log = logging.getLogger(__name__)

# What operator methods return, as Blender's stubs spell it.
Result = set[Literal["RUNNING_MODAL", "CANCELLED", "FINISHED", "PASS_THROUGH", "INTERFACE"]]

RESULT_ITEMS = [
    ("PREFS", "Preferences", "As set in the add-on preferences"),
    ("AUTO", "Automatic", "The farm writes frames when it runs here, else they are downloaded"),
    ("COORDINATOR", "Farm writes them", "The coordinator writes into the output path"),
    ("DOWNLOAD", "Download", "Download finished frames into the output folder"),
]


def records() -> JobRecords:
    return JobRecords(preferences.user_dir() / "jobs.json")


def online_allowed(url: str) -> bool:
    """Blender's 'Allow Online Access' (4.2+) for anything beyond this computer."""
    return is_local_url(url) or bool(getattr(bpy.app, "online_access", True))


def _offline_message(url: str) -> str:
    return (
        f"Blender's 'Allow Online Access' is off, so the add-on won't contact {url}."
        " Turn it on in Preferences > System > Network, or use a farm on this computer."
    )


class FARM_OT_submit_job(bpy.types.Operator):
    """Pack this file with everything it uses, send it to the farm and create a render job"""

    bl_idname = "farm.submit_job"
    bl_label = "Submit to Farm"
    coordinator: bpy.props.StringProperty(
        name="Coordinator", description="URL; empty: the panel's choice"
    )
    token: bpy.props.StringProperty(name="Token", description="Farm token; empty: the preferences'")
    job_type: bpy.props.StringProperty(name="Job type", description="Empty: the panel's")
    job_name: bpy.props.StringProperty(
        name="Name", description="Empty: the panel's, else the file name"
    )
    frames: bpy.props.StringProperty(
        name="Frames", description="Empty: the panel's, else the scene range"
    )
    chunk_size: bpy.props.IntProperty(name="Chunk size", description="0: the panel's", min=0)
    priority: bpy.props.IntProperty(
        name="Priority", description="-1: the panel's", default=-1, min=-1, max=100
    )
    settings_json: bpy.props.StringProperty(
        name="Settings", description="Job-type settings as a JSON object"
    )
    results: bpy.props.EnumProperty(name="Frames", items=RESULT_ITEMS, default="PREFS")
    wait: bpy.props.BoolProperty(name="Wait", description="Block until the job ends (scripts)")
    timeout: bpy.props.FloatProperty(
        name="Timeout", description="Seconds to wait for the job", default=3600
    )

    _timer: Any = None
    _sub: submitting.Submission | None = None

    # ------------------------------------------------------------ shared
    def prepare(self, context: Any) -> submitting.Submission:
        """Everything that needs bpy: snapshot, scan, plan, save the copy."""
        if not bpy.data.filepath:
            raise SubmitError("Save your .blend file first: the farm packs it from where it lives")
        url, token = scan.coordinator(context, url=self.coordinator, token=self.token)
        if not online_allowed(url):
            raise SubmitError(_offline_message(url))
        snap = scan.snapshot(context.scene)
        form = self.form(context)
        known = STATE.job_types.get(url)  # the panel's copy; the thread asks again
        if known:
            form = submitting.with_schema(form, known)
        job_settings(snap, form)  # output path, frames, format: refuse before packing
        plan = plan_pack(bpy.data.filepath, scan.dependencies())
        if plan.missing:
            listed = "; ".join(m.describe() for m in plan.missing[:5])
            more = f" and {len(plan.missing) - 5} more" if len(plan.missing) > 5 else ""
            raise SubmitError(f"Missing files, nothing was sent: {listed}{more}")
        pack_root = new_pack_folder(Path(tempfile.gettempdir()))
        main_source, restore = scan.main_source(pack_root / plan.blend_relpath)
        mode = self.results if self.results != "PREFS" else preferences.get(context).results
        return submitting.Submission(
            client=FarmClient(url, token=token or None),
            plan=plan,
            pack_root=pack_root,
            rewrite_command=scan.rewrite_command(),
            snapshot=snap,
            form=form,
            deliver=coordinator_delivers(url, mode.lower()),
            main_source=main_source,
            cache_path=preferences.user_dir() / "prepared.json",
            restore=restore,
        )

    def form(self, context: Any) -> JobForm:
        panel = context.scene.farm_job
        job_type = self.job_type or panel.job_type or "blender-render"
        if self.settings_json:
            try:
                extra = json.loads(self.settings_json)
            except ValueError as ex:
                raise SubmitError(f"settings_json is not valid JSON: {ex}") from ex
        else:
            extra = panel.extra() if job_type == panel.job_type else {}
        requires_tags, needs = panel.requirements()
        return JobForm(
            job_type=job_type,
            name=self.job_name or panel.job_name or default_job_name(bpy.data.filepath),
            frames=self.frames or panel.frames,
            chunk_size=self.chunk_size or panel.chunk_size,
            priority=self.priority if self.priority >= 0 else panel.priority,
            extra=extra,
            requires_tags=requires_tags,
            needs=needs,
        )

    def start(self, context: Any) -> bool:
        """Prepare on the main thread, then hand the network part to the helper."""
        try:
            self._sub = sub = self.prepare(context)
        except (SubmitError, FarmClientError, OSError, RuntimeError) as ex:
            self._say(context, {"ERROR"}, submitting.artist_message(ex))
            return False
        try:
            STATE.start_submit(sub.to_json(), sub.pack_root)
        except HelperGone as ex:
            _remove_tree(sub.pack_root)
            self._say(context, {"ERROR"}, f"Could not start the add-on's helper process: {ex}")
            return False
        return True

    def finish(self, context: Any, msg: Message) -> Result:
        sub, STATE.submit = self._sub, None
        if sub is not None:
            _remove_tree(sub.pack_root)  # the helper removes it too; this covers its death
        wm = context.window_manager
        wm.farm.submitting, wm.farm.progress_text = False, ""
        if isinstance(msg, MsgDone) and sub is not None:
            self._say(context, {"INFO"}, msg.text)
            _remember(sub, msg.result)
            STATE.refresh_jobs()
            return {"FINISHED"}
        text = getattr(msg, "text", "Submission failed")
        self._say(context, {"WARNING"} if isinstance(msg, MsgCancelled) else {"ERROR"}, text)
        return {"CANCELLED"}

    def _say(self, context: Any, level: set[str], text: str) -> None:
        """Report, and keep it on the panel's result line."""
        STATE.last_result = LastResult(text, "ERROR" in level, time.monotonic())
        STATE.changed = True
        self.report(level, text)  # type: ignore[arg-type]

    # ------------------------------------------------------- scripts: blocking
    def execute(self, context: Any) -> Result:
        if STATE.submit is not None:
            self.report({"WARNING"}, "A submission is already running")
            return {"CANCELLED"}
        if not self.start(context):
            return {"CANCELLED"}
        state = STATE.submit
        assert state is not None
        printer = ProgressPrinter()
        STATE.progress[state.rid] = printer  # progress lines on stdout for scripts
        STATE.wait(lambda: state.final is not None)
        assert state.final is not None
        final = state.final
        result = self.finish(context, final)
        if result != {"FINISHED"} or not self.wait or not isinstance(final, MsgDone):
            return result
        return self.wait_for_job(final.result)

    def wait_for_job(self, job: dict[str, Any]) -> Result:
        sub = self._sub
        assert sub is not None
        deadline = time.monotonic() + self.timeout
        try:
            while job["status"] not in TERMINAL_JOB_STATUSES:
                if time.monotonic() > deadline:
                    self.report(
                        {"ERROR"}, f"Job {job['id']} still {job['status']} after {self.timeout:g} s"
                    )
                    return {"CANCELLED"}
                time.sleep(1.0)
                job = sub.client.job(job["id"], tasks=False)
            if not sub.deliver:
                got = sync_job(sub.client, submitting.record_of(sub, job))
                print(f"farm: downloaded {len(got.fetched)} frame(s)", flush=True)
        except FarmClientError as ex:
            self.report({"ERROR"}, submitting.artist_message(ex, url=sub.client.url))
            return {"CANCELLED"}
        if job["status"] != "completed":
            self.report({"ERROR"}, f"Job {job['id']} {job['status']}: {job.get('status_reason')}")
            return {"CANCELLED"}
        self.report(
            {"INFO"}, f"Job {job['id']} completed; frames are in {job['settings'].get('output')}"
        )
        return {"FINISHED"}

    # --------------------------------------------------------- UI: modal
    def invoke(self, context: Any, event: Any) -> Result:
        if bpy.app.background or STATE.submit is not None:
            return self.execute(context)
        if not self.start(context):
            return {"CANCELLED"}
        wm = context.window_manager
        wm.farm.submitting, wm.farm.progress = True, 0.0
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> Result:
        state = STATE.submit
        if event.type == "ESC" and state is not None:
            if event.value == "PRESS":
                STATE.cancel_submit()
                context.window_manager.farm.progress_text = state.text
                _redraw(context)
            return {"RUNNING_MODAL"}
        if event.type != "TIMER" or state is None:
            return {"PASS_THROUGH"}
        STATE.pump(budget=0.01)
        wm = context.window_manager
        if state.final is None:
            wm.farm.progress, wm.farm.progress_text = state.progress, state.text
            _redraw(context)
            return {"RUNNING_MODAL"}
        wm.event_timer_remove(self._timer)
        _redraw(context)
        return self.finish(context, state.final)


def _remember(sub: submitting.Submission, job: dict[str, Any]) -> None:
    """Note the job for this .blend so its frames are synced, now and after a reopen."""
    record = submitting.record_of(sub, job)
    try:
        records().add(record)
    except OSError as ex:
        log.warning("can't record job %s: %s", record.job_id, ex)
    if not record.deliver and not bpy.app.background:
        STATE.sync_blends.add(os.path.normcase(record.blend))


def _remove_tree(path: Path) -> None:
    """The pack folder: the saved copy is only needed until the upload is done."""
    shutil.rmtree(path, ignore_errors=True)


def _redraw(context: Any) -> None:
    for window in context.window_manager.windows:
        for area in window.screen.areas:
            if area.type in {"PROPERTIES", "STATUSBAR"}:
                area.tag_redraw()


class FARM_OT_cancel_submit(bpy.types.Operator):
    """Stop the running submission; nothing half-sent becomes a job"""

    bl_idname = "farm.cancel_submit"
    bl_label = "Cancel Submission"

    def execute(self, context: Any) -> Result:
        if STATE.submit is None:
            return {"CANCELLED"}
        STATE.cancel_submit()
        return {"FINISHED"}


class FARM_OT_use_coordinator(bpy.types.Operator):
    """Send jobs to this coordinator"""

    bl_idname = "farm.use_coordinator"
    bl_label = "Use This Farm"

    url: bpy.props.StringProperty()

    def execute(self, context: Any) -> Result:
        context.window_manager.farm.coordinator_url = self.url
        STATE.refresh_jobs()
        return {"FINISHED"}


def _farm_call(op: Any, what: str, kind: str, args: JSON) -> Result:
    """A quick farm call, done by the helper: the panel's result line shows how it
    went; in scripts (no timers) it is waited for and reported."""
    try:
        if not bpy.app.background:
            STATE.run_action(what, kind, args)
            return {"FINISHED"}
        answer: list[JSON] = []
        STATE.request(kind, args, answer.append)
        STATE.wait(lambda: bool(answer))
    except HelperGone as ex:
        op.report({"ERROR"}, f"Could not start the add-on's helper process: {ex}")
        return {"CANCELLED"}
    result = result_of(answer[0])
    op.report({"ERROR"} if result.error else {"INFO"}, result.text)
    return {"CANCELLED"} if result.error else {"FINISHED"}


def _farm(context: Any) -> dict[str, str]:
    """The url and token of the chosen farm, for a request to the helper."""
    url, token = scan.coordinator(context)
    if not online_allowed(url):
        raise SubmitError(_offline_message(url))
    return {"url": url, "token": token}


ACTIONS = [
    ("cancel", "Cancel", "Stop the job; running tasks are told to stop"),
    ("pause", "Pause", "Hold back queued tasks; running ones finish"),
    ("resume", "Resume", "Continue a paused job"),
    ("requeue", "Requeue Failed", "Run the failed and canceled tasks again"),
    ("regenerate", "Regenerate", "Render every frame of the job again"),
]


class FARM_OT_job_action(bpy.types.Operator):
    """Change a job on the farm"""

    bl_idname = "farm.job_action"
    bl_label = "Job Action"

    job_id: bpy.props.IntProperty()
    action: bpy.props.EnumProperty(items=ACTIONS)

    @classmethod
    def description(cls, context: Any, properties: Any) -> str:
        return next(a[2] for a in ACTIONS if a[0] == properties.action)

    def invoke(self, context: Any, event: Any) -> Result:
        """From the panel: this file's jobs only, unless the artist shows All."""
        farm = context.window_manager.farm
        row = next((j for j in farm.jobs if j.job_id == self.job_id), None)
        if farm.scope != "ALL" and (row is None or not row.own):
            self.report({"ERROR"}, f"Job {self.job_id} is not this file's: show All to change it")
            return {"CANCELLED"}
        return self.execute(context)

    def execute(self, context: Any) -> Result:
        try:
            farm = _farm(context)
        except SubmitError as ex:
            self.report({"ERROR"}, str(ex))
            return {"CANCELLED"}
        args = {**farm, "job_id": self.job_id, "action": self.action}
        return _farm_call(self, f"{self.action} job {self.job_id}", "action", args)


class FARM_OT_refresh_jobs(bpy.types.Operator):
    """Ask the farm for the job list now"""

    bl_idname = "farm.refresh_jobs"
    bl_label = "Refresh"

    def execute(self, context: Any) -> Result:
        STATE.refresh_jobs()
        STATE.job_types.clear()
        STATE.types_failed_at.clear()
        return {"FINISHED"}


class FARM_OT_open_output(bpy.types.Operator):
    """Open the folder the job's frames land in"""

    bl_idname = "farm.open_output"
    bl_label = "Open Output Folder"

    folder: bpy.props.StringProperty()

    def execute(self, context: Any) -> Result:
        folder = self.folder or _scene_output_dir(context)
        if not folder:
            self.report({"ERROR"}, "This job has no output folder")
            return {"CANCELLED"}
        os.makedirs(folder, exist_ok=True)
        bpy.ops.wm.path_open(filepath=folder)
        return {"FINISHED"}


def _scene_output_dir(context: Any) -> str:
    try:
        from .submission import resolve_output

        return output_dir(resolve_output(scan.snapshot(context.scene)))
    except SubmitError:
        return ""


class FARM_OT_open_dashboard(bpy.types.Operator):
    """Open the farm's web dashboard in your browser"""

    bl_idname = "farm.open_dashboard"
    bl_label = "Open Dashboard"

    def execute(self, context: Any) -> Result:
        try:
            url, _token = scan.coordinator(context)
        except SubmitError as ex:
            self.report({"ERROR"}, str(ex))
            return {"CANCELLED"}
        bpy.ops.wm.url_open(url=url + "/")
        return {"FINISHED"}


class FARM_OT_copy_worker_command(bpy.types.Operator):
    """Copy the command that adds another computer to this farm"""

    bl_idname = "farm.copy_worker_command"
    bl_label = "Copy Worker Command"

    def execute(self, context: Any) -> Result:
        state = local_farm.status(preferences.data_dir(preferences.get(context)))
        if not state.running:
            self.report({"ERROR"}, "No farm runs on this computer")
            return {"CANCELLED"}
        command = local_farm.worker_command(local_farm.lan_url(state.url), state.token)
        context.window_manager.clipboard = command
        where = "PowerShell" if platform.system() == "Windows" else "a terminal"  # its form
        self.report({"INFO"}, f"Worker command copied; paste it in {where} on the other computer")
        return {"FINISHED"}


class FARM_OT_start_local_farm(bpy.types.Operator):
    """Start a farm coordinator on this computer (it keeps running after Blender closes)"""

    bl_idname = "farm.start_local_farm"
    bl_label = "Start a Farm on This Computer"

    worker: bpy.props.EnumProperty(
        items=[("PREFS", "Preferences", ""), ("YES", "Yes", ""), ("NO", "No", "")],
        default="PREFS",
    )

    def execute(self, context: Any) -> Result:
        prefs = preferences.get(context)
        root = preferences.data_dir(prefs)
        with_worker = prefs.local_worker if self.worker == "PREFS" else self.worker == "YES"
        lan = bool(getattr(bpy.app, "online_access", True))
        blender = bpy.app.binary_path
        args = {
            "root": str(root),
            "python": blender_python(),
            "pythonpath": scan.python_path(),
            "name": platform.node() or "Blender farm",
            "lan": lan,
            "interfaces": _env_interfaces(),
            "worker": with_worker,
            "blender": blender,
            "bpy_python": "" if blender else blender_python(),
        }
        return _farm_call(self, "starting the farm", "farm_start", args)


def _env_interfaces() -> list[str] | None:
    try:
        from .finder import env_interfaces
    except ImportError:  # no zeroconf: nothing to restrict
        return None
    return env_interfaces()


def blender_python() -> str:
    """The Python that runs the helper and a local farm: Blender's own (sys.executable
    is it in Blender 2.91+ and in the bpy module)."""
    import sys

    return sys.executable


class FARM_OT_stop_local_farm(bpy.types.Operator):
    """Stop the farm processes running on this computer"""

    bl_idname = "farm.stop_local_farm"
    bl_label = "Stop"

    which: bpy.props.EnumProperty(
        items=[
            ("ALL", "Farm", "Worker and coordinator"),
            ("WORKER", "Worker", "Only the local worker"),
        ],
        default="ALL",
    )

    def invoke(self, context: Any, event: Any) -> Result:
        """Stopping the farm while its jobs still run asks first; `blender -b` has
        nobody to ask, and a script that stops the farm means it."""
        if bpy.app.background or self.which != "ALL" or not _local_work_running(context):
            return self.execute(context)
        wm = context.window_manager
        if bpy.app.version >= (4, 1, 0):
            return wm.invoke_confirm(
                self,
                event,
                title="Stop the farm?",
                message="Jobs are still queued or rendering; they stop with it.",
                confirm_text="Stop Farm",
            )
        return wm.invoke_confirm(self, event)

    def execute(self, context: Any) -> Result:
        root = preferences.data_dir(preferences.get(context))
        args = {"root": str(root), "which": self.which}
        return _farm_call(self, "stopping", "farm_stop", args)


def _local_work_running(context: Any) -> bool:
    local = scan.local_url(context)
    return stop_asks(local, STATE.jobs.url, STATE.jobs.running)


class FARM_OT_copy_token(bpy.types.Operator):
    """Copy the token of the farm this computer runs (it is not shown in the panel)"""

    bl_idname = "farm.copy_token"
    bl_label = "Copy Farm Token"

    def execute(self, context: Any) -> Result:
        state = local_farm.status(preferences.data_dir(preferences.get(context)))
        if not state.token:
            self.report({"ERROR"}, "No farm runs on this computer")
            return {"CANCELLED"}
        context.window_manager.clipboard = state.token
        self.report({"INFO"}, "Farm token copied")
        return {"FINISHED"}


CLASSES = (
    FARM_OT_submit_job,
    FARM_OT_cancel_submit,
    FARM_OT_use_coordinator,
    FARM_OT_job_action,
    FARM_OT_refresh_jobs,
    FARM_OT_open_output,
    FARM_OT_open_dashboard,
    FARM_OT_copy_worker_command,
    FARM_OT_copy_token,
    FARM_OT_start_local_farm,
    FARM_OT_stop_local_farm,
)
