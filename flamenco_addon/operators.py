"""Operators: thin. Gather from Blender, call one core function, report in words.

`execute()` is blocking and works in `blender -b` and the bpy module, where
timers never fire; `invoke()` + `modal()` keep the UI live while a thread
packs and uploads, with Esc or the Cancel button to stop it.
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

from coordinator.client.http import FarmClient, FarmClientError, NotFoundError
from coordinator.core.protocol import TERMINAL_JOB_STATUSES

from . import background, local_farm, preferences, scan, submitting
from .background import Message, MsgCancelled, MsgDone, MsgProgress
from .packing import plan_pack
from .runtime import STATE
from .submission import (
    JobForm,
    SubmitError,
    coordinator_delivers,
    is_local_url,
    job_settings,
    output_dir,
)
from .sync import JobRecord, JobRecords, sync_job

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
        known = STATE.job_types.by_url.get(url)  # the panel's copy; the thread asks again
        if known:
            form = submitting.with_schema(form, known)
        job_settings(snap, form)  # output path, frames, format: refuse before packing
        plan = plan_pack(bpy.data.filepath, scan.dependencies())
        if plan.missing:
            listed = "; ".join(m.describe() for m in plan.missing[:5])
            more = f" and {len(plan.missing) - 5} more" if len(plan.missing) > 5 else ""
            raise SubmitError(f"Missing files, nothing was sent: {listed}{more}")
        pack_root = Path(tempfile.mkdtemp(prefix="farm-pack-"))
        copy = pack_root / plan.blend_relpath
        copy.parent.mkdir(parents=True, exist_ok=True)
        bpy.ops.wm.save_as_mainfile(filepath=str(copy), copy=True, relative_remap=True)
        mode = self.results if self.results != "PREFS" else preferences.get(context).results
        return submitting.Submission(
            client=FarmClient(url, token=token or None),
            plan=plan,
            pack_root=pack_root,
            rewrite_command=scan.rewrite_command(),
            snapshot=snap,
            form=form,
            deliver=coordinator_delivers(url, mode.lower()),
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
        return JobForm(
            job_type=job_type,
            name=self.job_name or panel.job_name,
            frames=self.frames or panel.frames,
            chunk_size=self.chunk_size or panel.chunk_size,
            priority=self.priority if self.priority >= 0 else panel.priority,
            extra=extra,
        )

    def start(self, context: Any, *, deferred: bool = False) -> background.Channel | None:
        try:
            self._sub = self.prepare(context)
        except (SubmitError, FarmClientError, OSError, RuntimeError) as ex:
            self.report({"ERROR"}, submitting.artist_message(ex))
            return None
        sub = self._sub
        channel = background.start(
            lambda ch: submitting.run(sub, ch),
            lambda ex: submitting.artist_message(ex, url=sub.client.url),
            done_text=submitting.done_text,
            deferred=deferred,
        )
        STATE.submit = channel
        return channel

    def finish(self, context: Any, msg: Message) -> Result:
        sub, STATE.submit = self._sub, None
        if sub is not None:
            _remove_tree(sub.pack_root)
        wm = context.window_manager
        wm.farm.submitting, wm.farm.progress_text = False, ""
        if isinstance(msg, MsgDone) and sub is not None:
            self.report({"INFO"}, msg.text)
            _remember(sub, msg.result)
            STATE.jobs.refresh()
            return {"FINISHED"}
        text = getattr(msg, "text", "Submission failed")
        self.report({"WARNING"} if isinstance(msg, MsgCancelled) else {"ERROR"}, text)
        return {"CANCELLED"}

    # ------------------------------------------------------- scripts: blocking
    def execute(self, context: Any) -> Result:
        channel = self.start(context)
        if channel is None:
            return {"CANCELLED"}
        final = background.wait(channel, _print_progress)
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
                got = sync_job(sub.client, _record(sub, job))
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
            if STATE.submit is not None:
                self.report({"WARNING"}, "A submission is already running")
                return {"CANCELLED"}
            return self.execute(context)
        # The thread starts at the first timer event, once this call has returned:
        # a Python thread starting inside an operator that a script called through
        # bpy.ops crashed Blender 3.4 now and then (a C call without the GIL).
        if self.start(context, deferred=True) is None:
            return {"CANCELLED"}
        wm = context.window_manager
        wm.farm.submitting, wm.farm.progress = True, 0.0
        self._timer = wm.event_timer_add(0.1, window=context.window)
        wm.modal_handler_add(self)
        return {"RUNNING_MODAL"}

    def modal(self, context: Any, event: Any) -> Result:
        channel = STATE.submit
        if event.type == "ESC" and channel is not None:
            channel.cancel.set()
            return {"RUNNING_MODAL"}
        if event.type != "TIMER" or channel is None:
            return {"PASS_THROUGH"}
        channel.begin()
        wm = context.window_manager
        for msg in channel.drain():
            if isinstance(msg, MsgProgress):
                wm.farm.progress, wm.farm.progress_text = msg.fraction, msg.text
                continue
            wm.event_timer_remove(self._timer)
            _redraw(context)
            return self.finish(context, msg)
        _redraw(context)
        return {"RUNNING_MODAL"}


_printed = [""]  # the stage last printed by _print_progress


def _print_progress(msg: Message) -> None:
    """Progress on stdout for scripts: one line per stage, and per 10% of the upload."""
    if not isinstance(msg, MsgProgress):
        return
    key = msg.stage if msg.stage != "upload" else f"upload{int(msg.fraction * 10)}"
    if key != _printed[0]:
        _printed[0] = key
        print(f"farm: {msg.fraction:4.0%} {msg.text}", flush=True)


def _record(sub: submitting.Submission, job: dict[str, Any]) -> JobRecord:
    settings = job.get("settings") or {}
    out = settings.get("output")
    return JobRecord(
        job_id=int(job["id"]),
        coordinator=sub.client.url,
        blend=os.path.abspath(sub.snapshot.blend_path),
        name=str(job.get("name", "")),
        output_dir=output_dir(out) if out else "",
        deliver=sub.deliver or not out,
        overwrite=bool(settings.get("overwrite", True)),
    )


def _remember(sub: submitting.Submission, job: dict[str, Any]) -> None:
    """Note the job for this .blend so its frames are synced, now and after a reopen."""
    record = _record(sub, job)
    try:
        records().add(record)
    except OSError as ex:
        log.warning("can't record job %s: %s", record.job_id, ex)
    if not record.deliver and STATE.syncer is not None and not bpy.app.background:
        STATE.syncer.watch(record.blend)


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
        STATE.submit.cancel.set()
        return {"FINISHED"}


class FARM_OT_use_coordinator(bpy.types.Operator):
    """Send jobs to this coordinator"""

    bl_idname = "farm.use_coordinator"
    bl_label = "Use This Farm"

    url: bpy.props.StringProperty()

    def execute(self, context: Any) -> Result:
        context.window_manager.farm.coordinator_url = self.url
        STATE.jobs.refresh()
        return {"FINISHED"}


def _farm_call(op: Any, context: Any, what: str, call: Any, url: str = "") -> Result:
    """Run a quick farm call: in a thread from the UI, inline (with a report) in scripts."""

    def describe(ex: Exception) -> str:
        if isinstance(ex, local_farm.LocalFarmError):
            return str(ex)
        return submitting.artist_message(ex, url=url)

    if bpy.app.background:
        try:
            op.report({"INFO"}, call())
        except Exception as ex:
            op.report({"ERROR"}, describe(ex))
            return {"CANCELLED"}
        return {"FINISHED"}
    STATE.actions.run(what, call, describe)
    return {"FINISHED"}


def _client(context: Any) -> FarmClient:
    url, token = scan.coordinator(context)
    if not online_allowed(url):
        raise SubmitError(_offline_message(url))
    return FarmClient(url, token=token or None, timeout=5.0)


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

    def execute(self, context: Any) -> Result:
        try:
            client = _client(context)
        except SubmitError as ex:
            self.report({"ERROR"}, str(ex))
            return {"CANCELLED"}
        job_id, action = self.job_id, self.action

        def call() -> str:
            if action == "requeue":
                client.job_action(job_id, "requeue", {"which": "failed"})
            elif action == "regenerate":
                _regenerate(client, job_id)
            else:
                client.job_action(job_id, action)
            STATE.jobs.refresh()
            return f"Job {job_id}: {action} done"

        return _farm_call(self, context, f"{action} job {job_id}", call, client.url)


def _regenerate(client: FarmClient, job_id: int) -> None:
    """Render every frame again: the coordinator's regenerate where it has one,
    else requeue all tasks (coordinators before the regenerate route)."""
    regenerate = getattr(client, "regenerate_job", None)
    if regenerate is not None:
        try:
            regenerate(job_id, keep_completed=False)
            return
        except NotFoundError:
            pass
    client.job_action(job_id, "requeue", {"which": "all"})


class FARM_OT_refresh_jobs(bpy.types.Operator):
    """Ask the farm for the job list now"""

    bl_idname = "farm.refresh_jobs"
    bl_label = "Refresh"

    def execute(self, context: Any) -> Result:
        STATE.jobs.refresh()
        STATE.job_types.by_url.clear()
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
        self.report({"INFO"}, "Worker command copied; paste it in a terminal on the other computer")
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
        python, path = _blender_python(), scan.python_path()
        blender = bpy.app.binary_path
        name = platform.node() or "Blender farm"

        def call() -> str:
            state = local_farm.start_coordinator(
                root,
                python=python,
                pythonpath=path,
                name=name,
                lan=lan,
                zeroconf_interfaces=_env_interfaces(),
            )
            if with_worker:
                local_farm.start_worker(
                    root,
                    python=python,
                    pythonpath=path,
                    url=state.url,
                    token=state.token,
                    name=f"{name} (local)",
                    blender=blender,
                    bpy_python="" if blender else python,
                )
            STATE.jobs.refresh()
            return f"Farm running at {state.url}"

        return _farm_call(self, context, "starting the farm", call)


def _env_interfaces() -> list[str] | None:
    try:
        from .finder import env_interfaces
    except ImportError:  # no zeroconf: nothing to restrict
        return None
    return env_interfaces()


def _blender_python() -> str:
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

    def execute(self, context: Any) -> Result:
        root = preferences.data_dir(preferences.get(context))
        which = self.which

        def call() -> str:
            stopped = local_farm.stop(root, local_farm.WORKER)
            if which == "ALL":
                stopped = local_farm.stop(root, local_farm.COORDINATOR) or stopped
            return "Stopped" if stopped else "Nothing was running"

        return _farm_call(self, context, "stopping", call)


CLASSES = (
    FARM_OT_submit_job,
    FARM_OT_cancel_submit,
    FARM_OT_use_coordinator,
    FARM_OT_job_action,
    FARM_OT_refresh_jobs,
    FARM_OT_open_output,
    FARM_OT_open_dashboard,
    FARM_OT_copy_worker_command,
    FARM_OT_start_local_farm,
    FARM_OT_stop_local_farm,
)
