"""The `encode` kind's work: fetch a movie job's frames, have Blender make the movie.

The frames are the intermediate outputs of the job's render tasks, which
this task depends on (the assignment's `inputs`). The movie is made by
in_blender/encode.py in the job's Blender, through the warm runner like any
render, and uploaded as the task's one output.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from coordinator.core.names import UnsafeNameError, check_name_pattern, check_plain_name
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
