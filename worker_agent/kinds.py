"""The kinds of task a worker can do: render, merge, encode, preview, sleep; one function each.

Each kind is registered with @kind(name) and does its task through the
TaskRun it is given: reports progress, runs a script of in_blender/ in
Blender, and raises TaskFailure with the reason the farm shows (job_fault=True
only when every worker would meet it, whatever its version, OS or settings:
the task names no .blend or one it does not send, or the runner says so of a
file the project lacks). The TaskRun completes, fails or hands the task back;
a kind never reports the end itself.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from coordinator.client.http import ConflictError, FarmClientError
from coordinator.core.frames import format_frames, parse_frames
from coordinator.core.names import (
    UnsafeNameError,
    check_name_pattern,
    check_plain_name,
    check_relative_path,
    inside,
)
from worker_agent import encoding
from worker_agent import events as ev
from worker_agent.blender import write_task
from worker_agent.cache import CacheError
from worker_agent.in_blender.merge import MergeError, MergeTask
from worker_agent.in_blender.render_task import RenderTask, TaskError
from worker_agent.task_run import Kind, TaskFailure, TaskRun, exit_text

log = logging.getLogger(__name__)

KINDS: dict[str, Kind] = {}  # task kind -> what does it


def kind(name: str) -> Callable[[Kind], Kind]:
    def register(work: Kind) -> Kind:
        KINDS[name] = work
        return work

    return register


# ---------------------------------------------------------------- sleep


@kind("sleep")
def sleep(run: TaskRun) -> None:
    """Waits (the farm's own test kind): reports progress, stops at once on cancel."""
    seconds = float(run.task.payload.get("seconds", 0))
    end = time.monotonic() + seconds
    run.report(activity=f"sleeping {seconds:g} s")
    while not run.stopped.is_set() and (left := end - time.monotonic()) > 0:
        run.stopped.wait(min(left, run.config.report_seconds))
        run.report(progress=1 - max(0.0, end - time.monotonic()) / max(seconds, 1e-9))
        run.flush()


# ---------------------------------------------------------------- render


@kind("render")
def render(run: TaskRun) -> None:
    """Renders the task's frames with the runner; every frame must arrive at the farm."""
    with _refused():
        check_name_pattern(run.task.payload.get("output_name") or "", what="output name")
    with_project(run, _render_in)


def _render_in(run: TaskRun, blend: Path, out_dir: Path) -> None:
    render_task = _render_task(run, blend, out_dir)
    task_json = write_task(render_task, out_dir / "task.json")
    frames = list(render_task.frames)
    saved: dict[int, str] = {}
    at = {"index": 0}  # the frame being rendered, as an index into frames
    said: list[str] = []  # the runner's error events: what it found wrong

    def on_event(event: ev.RunnerEvent | None) -> None:
        if isinstance(event, ev.FrameStart) and event.frame in frames:
            at["index"] = frames.index(event.frame)
            run.report(
                progress=at["index"] / len(frames), activity=f"rendering frame {event.frame}"
            )
        elif isinstance(event, ev.Progress):
            run.report(
                progress=(at["index"] + event.fraction) / len(frames),
                activity=f"frame {event.frame}: sample {event.sample}/{event.samples}",
            )
        elif isinstance(event, ev.FrameSaved):
            saved[event.frame] = event.path
        elif isinstance(event, ev.RunnerError):
            said.append(event.message)

    code, failed_uploads = run.run_script("render", task_json, blend, on_event)
    if run.stopped.is_set():
        return
    missing = [f for f in frames if f not in saved]
    if missing or code != 0:
        raise TaskFailure(
            render_failure(code, missing, said[-1] if said else None, run.last_words()),
            # the runner's own end after its error, not Blender killed by a signal
            job_fault=0 < code < 128 and run.job_fault_said(),
        )
    if failed_uploads:
        raise TaskFailure(f"could not upload {', '.join(failed_uploads)}")
    run.report(progress=1.0, activity="done")


def render_failure(code: int, missing: list[int], runner_said: str | None, last: str) -> str:
    """A failed render's reason, what to fix first: the farm keeps its head and
    tail only, so the runner's own message (the files to send, the scene to
    name) leads, and how Blender ended follows; else Blender's last line ends it."""
    ended = exit_text(code)
    if missing:
        ended += f"; frames {frames_text(missing)} were not written"
    if runner_said is not None:
        return f"{runner_said} ({ended})"
    return f"{ended}: {last}"


# A frame list longer than this in a reason is cut, saying how many frames.
_FRAMES_SHOWN = 80


def frames_text(frames: list[int]) -> str:
    """Frames for a person, runs joined ("1-24, 30"; a run of two reads "2, 3")."""
    parts = []
    for entry in format_frames(frames).split(","):
        pair = parse_frames(entry)
        parts.append(f"{pair[0]}, {pair[1]}" if len(pair) == 2 else entry)
    text = ", ".join(parts)
    if len(text) <= _FRAMES_SHOWN:
        return text
    return f"{text[:_FRAMES_SHOWN].rsplit(', ', 1)[0]}, ... ({len(set(frames))} frames)"


def _render_task(run: TaskRun, blend: Path, out_dir: Path) -> RenderTask:
    """The task's payload as the runner's TASK.json, with this worker's own settings.

    Neither failure is the job's fault: this worker's code reads the payload,
    and a coordinator newer than the worker may send what it cannot read yet
    (a new device, a new missing_files mode) while another worker renders it.
    The payload is checked alone first, so the reason says which it was.
    """
    known = set(RenderTask.__dataclass_fields__)
    payload = {k: v for k, v in run.task.payload.items() if k in known}
    payload.update(blend=str(blend), output_dir=str(out_dir))
    try:
        RenderTask.from_json(payload)
    except TaskError as ex:
        raise TaskFailure(
            f"this worker cannot read the task: {ex}. It runs {this_worker()} and may be"
            " older than the coordinator: update it; another worker may render the task"
        ) from ex
    config = run.config
    payload["allow_scripts"] = config.allow_scripts
    if config.device is not None:
        payload["device"] = config.device
    if config.threads is not None:
        payload["threads"] = config.threads
    if config.persistent_data:
        payload["persistent_data"] = True
    try:
        return RenderTask.from_json(payload)
    except TaskError as ex:
        raise TaskFailure(f"this worker's settings do not fit the task: {ex}") from ex


# ---------------------------------------------------------------- merge


@kind("merge")
def merge(run: TaskRun) -> None:
    """A progressive merge: fetch its inputs, run merge.py, upload what it writes."""
    check_merge_names(run.task.payload)
    with_project(run, _merge_in)


def check_merge_names(payload: dict[str, Any]) -> None:
    """Every name a merge writes or reads is a plain name, before anything is fetched."""
    with _refused():
        check_name_pattern(payload.get("output_name") or "", what="output name")
        for merge in _dicts(payload.get("merges")):  # other shapes: _merge_task refuses them
            if merge.get("merged_output"):
                check_plain_name(merge["merged_output"], what="merged output")
            for item in _dicts(merge.get("inputs")):
                check_plain_name(item.get("name", ""), what="merge input")


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _merge_in(run: TaskRun, blend: Path, out_dir: Path) -> None:
    merge_task = _merge_task(run, blend, out_dir)
    task_json = out_dir / "merge.json"
    task_json.write_text(json.dumps(merge_task.to_json(), ensure_ascii=False), "utf-8")
    saved: list[str] = []

    def on_event(event: ev.RunnerEvent | None) -> None:
        if isinstance(event, ev.FrameSaved):
            saved.append(Path(event.path).name)
            run.report(progress=len(saved) / (2 * len(merge_task.merges)))

    run.report(activity=f"merging {len(merge_task.merges)} frame(s)")
    code, failed_uploads = run.run_script("merge", task_json, blend, on_event)
    if run.stopped.is_set():
        return
    merged = {m.merged_output for m in merge_task.merges if m.merged_output}
    finished = [name for name in saved if name not in merged]
    if code != 0 or len(finished) < len(merge_task.merges) or not merged <= set(saved):
        raise TaskFailure(f"the merge failed ({exit_text(code)}): {run.last_words()}")
    if failed_uploads:
        raise TaskFailure(f"could not upload {', '.join(failed_uploads)}")
    run.report(progress=1.0, activity="done")


def _merge_task(run: TaskRun, blend: Path, out_dir: Path) -> MergeTask:
    payload = run.task.payload
    folder = out_dir / "inputs"
    try:
        merges = [
            {
                "frame": merge["frame"],
                "merged_output": merge.get("merged_output"),
                "inputs": [_fetched(run, item, folder) for item in merge["inputs"]],
            }
            for merge in payload["merges"]
        ]
        return MergeTask.from_json(
            {
                "blend": str(blend),
                "output_dir": str(out_dir),
                "merges": merges,
                "samples": payload["samples"],
                "output_name": payload.get("output_name", ""),
                "file_format": payload.get("file_format"),
                "use_file_extension": payload.get("use_file_extension"),
                "scene": payload.get("scene"),
                "camera": payload.get("camera"),
                "allow_scripts": run.config.allow_scripts,
            }
        )
    except (KeyError, TypeError, ValueError, MergeError) as ex:
        raise TaskFailure(f"the merge task is malformed: {ex!r}") from ex


def _fetched(run: TaskRun, item: dict[str, Any], folder: Path) -> dict[str, Any]:
    """A merge input of the payload ({name, samples}) as MergeTask's ({path, samples})."""
    return {"path": str(_fetch_input(run, str(item["name"]), folder)), "samples": item["samples"]}


def _fetch_input(run: TaskRun, name: str, folder: Path) -> Path:
    """One output of the tasks this one depends on, exactly as they completed it."""
    sha = run.task.inputs.get(name)
    if sha is None:
        raise TaskFailure(f"input {name} is not among what the tasks this one depends on uploaded")
    with _refused():
        dest = folder / check_plain_name(name, what="task input")
    run.report(activity=f"fetching {name}")
    task_id = run.task.task_id
    try:  # a coordinator restarting is waited out, as for the project's files
        run.patiently(lambda: run.client.download_input(task_id, name, sha, dest))
    except ConflictError:
        raise
    except (FarmClientError, OSError) as ex:
        raise TaskFailure(f"could not fetch input {name}: {ex}") from ex
    return dest


# ---------------------------------------------------------------- encode


@kind("encode")
def encode(run: TaskRun) -> None:
    """A movie job's movie, from the frames its render tasks made (encoding.py)."""
    encoding.check_names(run.task.payload)

    def work(run: TaskRun, blend: Path, out_dir: Path) -> None:
        encoding.encode_in(run, blend, out_dir, lambda name, to: _fetch_input(run, name, to))

    with_project(run, work)


@kind("preview")
def preview(run: TaskRun) -> None:
    """A small movie of an image-sequence job's finished frames, for the dashboard."""

    def work(run: TaskRun, blend: Path, out_dir: Path) -> None:
        encoding.preview_in(run, blend, out_dir, lambda name, to: _fetch_input(run, name, to))

    with_project(run, work)


# ---------------------------------------------------------------- the project


def with_project(run: TaskRun, work: Callable[[TaskRun, Path, Path], None]) -> None:
    """Fetch the job's project, then work(run, .blend, a fresh output folder)."""
    task = run.task
    workdir = run.config.cache_dir / "jobs" / str(task.job_id)
    project = workdir / "project"
    blend = check_blend(task.blend, task.files)
    run.report(activity=f"fetching {len(task.files)} project files")
    run.flush()
    fetched: list[int] = []  # downloads of the last try (earlier ones are cached)
    try:
        # A coordinator that is away (restarting) is waited for, as for reports:
        # failing here would blame this worker for the coordinator's outage.
        run.patiently(
            lambda: fetched.append(run.agent.cache.materialize(run.client, task.files, project))
        )
    except (CacheError, FarmClientError, OSError) as ex:
        raise TaskFailure(f"could not fetch the project files: {ex}") from ex
    run.log_line(
        f"[agent] project files ready ({fetched[-1]} downloaded,"
        f" {len(task.files) - fetched[-1]} from cache)"
    )
    out_dir = workdir / f"out-{task.task_id}-{task.attempt}"
    shutil.rmtree(out_dir, ignore_errors=True)
    out_dir.mkdir(parents=True)
    try:
        with _refused():  # no link on the way leads elsewhere
            inside(project, blend)
        work(run, project / blend, out_dir)
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)


def check_blend(blend: str | None, files: dict[str, str]) -> str:
    """The job's .blend: one of the job's own files, by a path inside its folder.

    Never absolute and never climbing out: any other .blend on this worker
    would be rendered (and its frames uploaded) at the coordinator's word.
    No .blend, or one the job does not send, is the job's fault: no worker
    could render it, whatever its version.
    """
    if not blend:
        raise TaskFailure("the job names no .blend file to render", job_fault=True)
    with _refused():
        check_relative_path(blend, what="the job's .blend", allow_hidden=True)
    if blend not in files:
        raise TaskFailure(
            f"the job's .blend {blend!r} is not one of the job's files. Nothing was run",
            job_fault=True,
        )
    return blend


def this_worker() -> str:
    """This worker's software and version, for a reason that may be about its age."""
    try:
        return f"lanfarm {importlib.metadata.version('lanfarm')}"
    except importlib.metadata.PackageNotFoundError:
        return "lanfarm (version unknown: not installed as a package)"


@contextlib.contextmanager
def _refused() -> Iterator[None]:
    """An unsafe name from the coordinator fails the task here, saying which. Not the
    job's fault: the rule is this worker's code (core/names.py), which a worker of
    another version may draw elsewhere, and the coordinator has checked the names
    by its own rules (looser for project paths); a few quick refusals cost less
    than failing a job another worker renders."""
    try:
        yield
    except UnsafeNameError as ex:
        raise TaskFailure(
            f"{ex}. Nothing was run: a path from the coordinator must stay inside"
            f" the job's folder on this worker ({this_worker()})"
        ) from ex
