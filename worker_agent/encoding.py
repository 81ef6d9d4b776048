"""The `encode` and `preview` kinds' work: fetch frames, have Blender make a movie.

`encode`: the frames are the intermediate outputs of a movie job's render
tasks, which this task depends on (the assignment's `inputs`). `preview`:
they are the finished frames of an image-sequence job, found among the inputs
by the names Blender gives them. The movie is made by in_blender/encode.py in
the job's Blender, through the warm runner like any render, and uploaded as
the task's one output. A preview that cannot be made is only logged: it never
fails the job.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from coordinator.core.names import UnsafeNameError, check_name_pattern, check_plain_name
from coordinator.core.outputs import frame_path
from worker_agent import events as ev
from worker_agent.in_blender.encode import EncodeTask
from worker_agent.in_blender.render_task import TaskError
from worker_agent.task_run import TaskFailure, TaskRun, exit_text

# Fetches one input by name into a folder -> its path (kinds._fetch_input).
Fetch = Callable[[str, Path], Path]


def check_names(payload: dict[str, Any]) -> list[str]:
    """The frames an encode reads, every name plain, before anything is fetched."""
    try:
        check_name_pattern(str(payload.get("output_name") or ""), what="output name")
        inputs = payload.get("inputs")
        if not isinstance(inputs, list) or not inputs:
            raise TaskFailure("the encode task names no frames to encode")
        return [check_plain_name(str(name), what="movie frame") for name in inputs]
    except UnsafeNameError as ex:
        raise TaskFailure(
            f"{ex}. Nothing was run: a path from the coordinator must stay inside"
            " the job's folder on this worker"
        ) from ex


def encode_in(run: TaskRun, blend: Path, out_dir: Path, fetch: Fetch) -> None:
    """Fetch the frames, encode, and make sure the movie arrived at the farm."""
    payload = run.task.payload
    names = check_names(payload)
    frames_dir = out_dir / "frames"
    for i, name in enumerate(names):
        fetch(name, frames_dir)
        run.report(progress=0.2 * (i + 1) / len(names), activity=f"fetched {name}")
    task = _encode_task(run, payload, blend, out_dir, frames_dir, names)
    task_json = out_dir / "encode.json"
    task_json.write_text(json.dumps(task.to_json(), ensure_ascii=False), "utf-8")
    saved: list[str] = []
    count = task.frame_end - task.frame_start + 1

    def on_event(event: ev.RunnerEvent | None) -> None:
        if isinstance(event, ev.FrameStart):
            done = event.frame - task.frame_start + 1
            run.report(progress=0.2 + 0.8 * done / count, activity=f"encoded frame {event.frame}")
        elif isinstance(event, ev.FrameSaved):
            saved.append(Path(event.path).name)

    run.report(activity=f"encoding {count} frames")
    code, failed_uploads = run.run_script("encode", task_json, blend, on_event)
    if run.stopped.is_set():
        return
    if code != 0 or len(saved) != 1:
        raise TaskFailure(f"the movie was not made ({exit_text(code)}): {run.last_words()}")
    if failed_uploads:
        raise TaskFailure(f"could not upload {', '.join(failed_uploads)}")
    run.report(progress=1.0, activity=f"made {saved[0]}")


def _encode_task(
    run: TaskRun,
    payload: dict[str, Any],
    blend: Path,
    out_dir: Path,
    frames_dir: Path,
    names: list[str],
) -> EncodeTask:
    try:
        return EncodeTask.from_json(
            {
                "blend": str(blend),
                "output_dir": str(out_dir),
                "frames_dir": str(frames_dir),
                "inputs": names,
                "frame_start": payload["frame_start"],
                "frame_end": payload["frame_end"],
                "output_name": payload.get("output_name") or "",
                "file_format": payload.get("file_format") or "FFMPEG",
                "use_file_extension": payload.get("use_file_extension"),
                "scene": payload.get("scene"),
                "allow_scripts": run.config.allow_scripts,
                "missing_files": payload.get("missing_files") or "fail",
            }
        )
    except (KeyError, TaskError) as ex:
        raise TaskFailure(f"the encode task is malformed: {ex!r}") from ex


# ---------------------------------------------------------------- preview

# The still formats a job that keeps the scene's format may have written.
_FORMATS = (
    *("PNG", "JPEG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "TIFF", "BMP", "TARGA"),
    *("CINEON", "DPX", "HDR", "WEBP", "IRIS", "JPEG2000"),
)


def frame_file(inputs: Collection[str], payload: dict[str, Any], frame: int) -> str | None:
    """The name among `inputs` of `frame` of the job's output, as Blender named it."""
    pattern = str(payload.get("output_name") or "")
    fmt = payload.get("file_format")
    use_ext = payload.get("use_file_extension") is not False
    for file_format in [fmt] if isinstance(fmt, str) and fmt else _FORMATS:
        for codec in ("JP2", "J2K") if file_format == "JPEG2000" else ("JP2",):
            try:
                name = frame_path(
                    pattern,
                    frame,
                    file_format=file_format,
                    use_file_extension=use_ext,
                    jpeg2k_codec=codec,
                )
            except ValueError:
                continue
            if name in inputs:
                return name
    return None


def preview_in(run: TaskRun, blend: Path, out_dir: Path, fetch: Fetch) -> None:
    """Make the job's preview; what stops it is logged, and the task completes without."""
    payload = run.task.payload
    try:
        name = check_plain_name(str(payload.get("preview_name") or ""), what="preview name")
        check_name_pattern(str(payload.get("output_name") or ""), what="output name")
    except UnsafeNameError as ex:
        raise TaskFailure(f"{ex}. Nothing was run") from ex
    frames = [f for f in payload.get("source_frames") or () if isinstance(f, int)]
    names = [n for n in (frame_file(run.task.inputs, payload, f) for f in frames) if n]
    if not names:
        run.log_line("[agent] no preview: none of the job's frames is among this task's inputs")
        return
    frames_dir = out_dir / "frames"
    for i, frame_name in enumerate(names):
        fetch(frame_name, frames_dir)
        run.report(progress=0.5 * (i + 1) / len(names), activity=f"fetched {frame_name}")
    task = EncodeTask(
        blend=str(blend),
        output_dir=str(out_dir),
        frames_dir=str(frames_dir),
        inputs=tuple(names),
        frame_start=1,
        frame_end=len(names),
        output_name=name,
        use_file_extension=True,
        scene=payload.get("scene"),
        allow_scripts=run.config.allow_scripts,
        missing_files="render",  # a preview shows the frames; it reads no other file
        max_width=int(payload.get("max_width") or 640),
    )
    task_json = out_dir / "encode.json"
    task_json.write_text(json.dumps(task.to_json(), ensure_ascii=False), "utf-8")
    saved: list[str] = []

    def on_event(event: ev.RunnerEvent | None) -> None:
        if isinstance(event, ev.FrameSaved):
            saved.append(Path(event.path).name)

    run.report(activity=f"making a preview of {len(names)} frames")
    code, failed_uploads = run.run_script("encode", task_json, blend, on_event)
    if run.stopped.is_set():
        return
    if code != 0 or saved != [name] or failed_uploads:
        run.log_line(f"[agent] no preview ({exit_text(code)}): {run.last_words()}")
        return
    run.report(progress=1.0, activity=f"made the preview {name}")
