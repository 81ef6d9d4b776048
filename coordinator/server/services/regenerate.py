"""Regenerate: compile a job's tasks again from changed settings, keeping
what the current tasks already finished.

The job keeps its id, files and outputs; its earlier tasks stay as an older
generation, logs included. Finished frames follow a changed output folder.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from coordinator.core import models
from coordinator.core.protocol import JobStatus, TaskSpec, TaskStatus
from coordinator.server import views
from coordinator.server.job_types.fileoutputs import destinations
from coordinator.server.job_types.outputs import expected_outputs
from coordinator.server.services.context import Service
from coordinator.server.services.deliveries import redeliver
from coordinator.server.services.jobs import compile_job
from coordinator.server.store import dumps, loads

log = logging.getLogger(__name__)


@dataclass
class _Finished:
    """What a job's current tasks finished, for a regenerate to keep."""

    frames: dict[int, set[str]] = field(default_factory=dict)  # frame -> signatures that made it
    tasks: dict[tuple[str, tuple[int, ...]], int] = field(default_factory=dict)  # -> task id


class Regenerator(Service):
    def regenerate(
        self, job_id: int, *, settings: Mapping[str, Any], keep_completed: bool = True
    ) -> models.RegeneratedJob:
        """Compile the job's tasks again from its settings, with `settings` changed.

        The job keeps its id, files, outputs and earlier tasks (an older
        generation, logs included). A new task whose frames the current tasks
        all finished, with the same payload apart from the frames, is kept as
        completed unless keep_completed is false. Running tasks are stopped:
        their workers get 409 on every report and "stop" from the control poll.
        """
        row = self.ctx.job_row(job_id)
        self.ctx.check_job_action(row, "regenerate")
        old = loads(row["settings"]) or {}
        _, new, tasks = compile_job(row["type"], {**old, **settings})
        done = self._finished_work(job_id, row["generation"]) if keep_completed else _Finished()
        generation = row["generation"] + 1
        with self.store.tx():
            stopped = self.ctx.set_tasks_status(
                job_id, (TaskStatus.QUEUED, TaskStatus.ACTIVE), TaskStatus.CANCELED
            )
            self.store.run(
                "UPDATE jobs SET settings = ?, generation = ? WHERE id = ?",
                dumps(new),
                generation,
                job_id,
            )
            self.ctx.insert_tasks(job_id, tasks, generation=generation)
            kept = self._keep_finished(job_id, generation, tasks, done)
            held = row["status"] == JobStatus.PAUSED  # a person's pause holds
            self.ctx.set_job_status(row, JobStatus.PAUSED if held else JobStatus.QUEUED, "")
            self.ctx.refresh_job(job_id)
            note = (
                f"regenerated as generation {generation} ({_describe_changes(old, new)});"
                f" {len(kept)} of {len(tasks)} tasks kept"
            )
            self.store.run("UPDATE jobs SET status_reason = ? WHERE id = ?", note, job_id)
        log.info("job %d %s", job_id, note)
        if kept and row["deliver"] and destinations(new) != destinations(old):
            # finished frames (and File Output files) follow the output to its new folder
            redeliver(self.store, job_id, {f for frames in kept.values() for f in frames})
        self.ctx.tasks_stopped(job_id, stopped)
        self.hub.notify_work()
        job = views.job_json(self.store, self.ctx.job_row(job_id))
        return views.regenerated_json(job, tasks=len(tasks), kept=len(kept), stopped=len(stopped))

    def _finished_work(self, job_id: int, generation: int) -> _Finished:
        """What the tasks of this generation finished, for a regenerate to keep: only
        frames that no unfinished task of the generation still has to produce."""
        done = _Finished()
        unfinished: set[int] = set()
        for r in self.store.all(
            "SELECT id, kind, payload, frames, status FROM tasks"
            " WHERE job_id = ? AND generation = ? AND frames != '[]'",  # framed tasks only
            job_id,
            generation,
        ):
            frames = tuple(loads(r["frames"]) or ())
            if r["status"] != TaskStatus.COMPLETED:
                unfinished.update(frames)
                continue
            signature = _render_signature(r["kind"], loads(r["payload"]) or {})
            done.tasks[(signature, frames)] = r["id"]
            for frame in frames:
                done.frames.setdefault(frame, set()).add(signature)
        for frame in unfinished:
            done.frames.pop(frame, None)
        return done

    def _keep_finished(
        self, job_id: int, generation: int, tasks: list[TaskSpec], done: _Finished
    ) -> dict[int, tuple[int, ...]]:
        """Mark the new tasks whose frames are all finished as completed.

        They are born completed in the transaction that inserts them, so no
        worker ever sees them queued (a creation, not a queued -> completed
        move). Returns their ids and frames.
        """
        if not done.frames:
            return {}
        ids = {
            r["idx"]: r["id"]
            for r in self.store.all(
                "SELECT id, idx FROM tasks WHERE job_id = ? AND generation = ?", job_id, generation
            )
        }
        kept: dict[int, tuple[int, ...]] = {}
        same: list[tuple[int, int]] = []  # (new id, the old task that did exactly this)
        for idx, spec in enumerate(tasks):
            signature = _render_signature(spec.kind, spec.payload)
            if spec.frames and all(signature in done.frames.get(f, ()) for f in spec.frames):
                kept[ids[idx]] = spec.frames
                old = done.tasks.get((signature, tuple(spec.frames)))
                if old is not None:
                    same.append((ids[idx], old))
        self.store.db.executemany(
            "UPDATE tasks SET status = 'completed', progress = 1, activity = ? WHERE id = ?",
            [(f"kept: finished before generation {generation}", task_id) for task_id in kept],
        )
        # An unchanged task's outputs now belong to its successor (tasks that
        # depend on it find them there); other outputs stay with the old task.
        self.store.db.executemany("UPDATE outputs SET task_id = ? WHERE task_id = ?", same)
        # A kept task of other chunks takes the outputs of its frames from the tasks of
        # its kind that made them, so that a task depending on it (a movie's encode, a
        # preview) finds them among its inputs.
        rechunked = set(kept) - {new for new, _ in same}
        for idx, spec in enumerate(tasks):
            if ids[idx] in rechunked:
                self._take_outputs(job_id, generation, ids[idx], spec)
        return kept

    def _take_outputs(self, job_id: int, generation: int, task_id: int, spec: TaskSpec) -> None:
        """Give a kept task the outputs of earlier tasks of its kind that it would have
        made itself (its frames, by the names it may upload)."""
        names = expected_outputs(spec.kind, dumps(spec.payload)).names
        marks = ",".join("?" * len(spec.frames))
        rows = self.store.all(
            f"SELECT id, name FROM outputs WHERE job_id = ? AND frame IN ({marks}) AND task_id"
            " IN (SELECT id FROM tasks WHERE job_id = ? AND generation < ? AND kind = ?)",
            job_id,
            *spec.frames,
            job_id,
            generation,
            spec.kind,
        )
        self.store.db.executemany(
            "UPDATE outputs SET task_id = ? WHERE id = ?",
            [(task_id, r["id"]) for r in rows if r["name"] in names],
        )


def _render_signature(kind: str, payload: Mapping[str, Any]) -> str:
    """What a task renders apart from which frames: a finished frame is only kept
    by a regenerate when the new task would render it the same way."""
    skip = ("frames", "intermediate_outputs")  # the second names the first's files
    return dumps([kind, {k: v for k, v in payload.items() if k not in skip}])


def _describe_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> str:
    def short(value: Any) -> str:
        return _clip(json.dumps(value, ensure_ascii=False), 40)

    changed = [
        f"{key} {short(old.get(key))} → {short(new.get(key))}"
        for key in sorted(set(old) | set(new))
        if old.get(key) != new.get(key)
    ]
    return ", ".join(changed) or "same settings"


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
