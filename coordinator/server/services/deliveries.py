"""Outputs: a worker's upload, its copy into the artist's output folder, and
the copies retried beside the sweep.

A delivery never replaces a file that is not ours, and only the newest
upload's result is recorded. Copies and checksums run in a thread, one per
output at a time (the service's own locks), so a big EXR never holds up
other requests.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from coordinator.core import models
from coordinator.core.protocol import TaskStatus
from coordinator.server import views
from coordinator.server.errors import BadRequest, Conflict, NotFound
from coordinator.server.filestore import (
    Delivery,
    check_output_name,
    check_sha256,
    deliver,
    remove_partial_deliveries,
)
from coordinator.server.job_types.fileoutputs import delivery_target, destinations
from coordinator.server.job_types.outputs import expected_outputs
from coordinator.server.job_types.schema import JSON
from coordinator.server.services.context import FarmContext, Service
from coordinator.server.store import Store, loads

log = logging.getLogger(__name__)

# outputs.delivery_note of a delivered output that must be copied again (a new folder)
PENDING_DELIVERY = "waiting to be delivered"


class DeliveryService(Service):
    def __init__(self, ctx: FarmContext) -> None:
        super().__init__(ctx)
        # (job id, output name) -> (held while that output is copied into its folder,
        # how many deliveries hold or wait for it)
        self._delivering: dict[tuple[int, str], tuple[asyncio.Lock, int]] = {}

    async def put_output(
        self,
        worker: JSON,
        task_id: int,
        name: str,
        *,
        frame: int | None,
        sha: str | None,
        chunks: AsyncIterator[bytes],
    ) -> models.Output:
        check_output_name(name)
        if sha is not None:
            check_sha256(sha)
        row = self.ctx.held_task(worker, task_id)
        job_id = row["job_id"]
        expected = expected_outputs(row["kind"], row["payload"])
        if not expected.allows(name):
            raise BadRequest(
                f"task {task_id} ({row['name']}) does not produce {name!r}; the names it may"
                f" upload: {expected.describe()}. Check that the scene's output name and"
                " format are those the job was submitted with"
            )
        self._check_output_owner(row, name)
        tmp, actual, size = await self.files.receive_output(name, chunks, sha=sha)
        try:
            # The lease may have gone, or the job been deleted, while the bytes came
            # in: check again before the file lands (it used to replace the stored
            # output first, leaving a file the outputs table did not describe).
            self.ctx.held_task(worker, task_id)
            self.files.commit_output(tmp, job_id, name)
        finally:
            tmp.unlink(missing_ok=True)
        now = time.time()
        # A job type names the outputs that only feed other tasks of the job
        # (progressive rendering's chunks): they are kept here, never delivered.
        intermediate = name in ((loads(row["payload"]) or {}).get("intermediate_outputs") or ())
        with self.store.tx():
            self.store.run(
                "INSERT INTO outputs (job_id, task_id, name, frame, sha256, size, created_at,"
                " intermediate, attempt) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (job_id, name) DO UPDATE SET"
                " task_id = excluded.task_id, frame = excluded.frame, sha256 = excluded.sha256,"
                " size = excluded.size, delivered_path = NULL, delivery_note = '',"
                " created_at = excluded.created_at, intermediate = excluded.intermediate,"
                " attempt = excluded.attempt",
                job_id,
                task_id,
                name,
                frame,
                actual,
                size,
                now,
                int(intermediate),
                row["attempts"],
            )
            self.store.run(
                "UPDATE tasks SET lease_expires = ? WHERE id = ?",
                now + self.config.lease_seconds,
                task_id,
            )
        out = await self.deliver(job_id, name)
        self.hub.publish("output", job_id=job_id, name=name, frame=frame)
        return out

    def _check_output_owner(self, task: Any, name: str) -> None:
        """One file name, one producer: a task may not replace (and take over) a file
        that another live task of the job made (a finished frame, a merge's input),
        unless it builds on that task: a progressive merge refines the frame its
        predecessor delivered."""
        owner = self.store.one(
            "SELECT t.id, t.name, t.status, t.generation, o.attempt FROM outputs o"
            " JOIN tasks t ON t.id = o.task_id WHERE o.job_id = ? AND o.name = ?",
            task["job_id"],
            name,
        )
        if (
            owner is not None
            and owner["id"] != task["id"]
            and owner["generation"] == task["generation"]
            and owner["status"] in (TaskStatus.ACTIVE, TaskStatus.COMPLETED)
            and owner["attempt"] is not None
            and self.store.one(
                "SELECT 1 FROM task_deps WHERE task_id = ? AND depends_on = ?",
                task["id"],
                owner["id"],
            )
            is None
        ):
            raise Conflict(
                f"{name!r} is an output of task {owner['id']} ({owner['name']}), not of"
                f" task {task['id']}; check the task's output name and frames"
            )

    async def deliver(self, job_id: int, name: str) -> models.Output:
        """Copy an output into the job's output folder, if the job asks for that.

        The copy and its checksums run in a thread: a big EXR must not hold up
        every other request. One delivery per output at a time, and only the
        newest upload's result is recorded (a re-upload may land meanwhile).
        """
        key = (job_id, name)
        lock, users = self._delivering.get(key, (asyncio.Lock(), 0))
        self._delivering[key] = (lock, users + 1)
        try:
            async with lock:
                return await self._deliver(job_id, name)
        finally:
            lock, users = self._delivering[key]
            if users == 1:  # the last one in: forget the lock
                del self._delivering[key]
            else:
                self._delivering[key] = (lock, users - 1)

    async def _deliver(self, job_id: int, name: str) -> models.Output:
        job = self.ctx.job_row(job_id)
        row = self.store.one("SELECT * FROM outputs WHERE job_id = ? AND name = ?", job_id, name)
        if row is None:
            raise NotFound(f"job {job_id} has no output named {name!r}")
        if not job["deliver"] or row["intermediate"]:
            return views.output_json(row)
        settings = loads(job["settings"]) or {}
        pattern = settings.get("output")
        if not pattern:
            return views.output_json(row)
        # A frame in the output folder; a File Output node's file where its submission says
        target = delivery_target(settings, name, row["frame"])
        if isinstance(target, str):
            result = Delivery(None, target)
        else:
            result = await asyncio.to_thread(
                deliver,
                self.files.output_path(job_id, name),
                row["sha256"],
                target,
                overwrite=bool(settings.get("overwrite", True)),
                replaceable=row["delivered_sha256"],
            )
        now = self.store.one("SELECT * FROM outputs WHERE id = ?", row["id"])
        job_now = self.store.one("SELECT settings FROM jobs WHERE id = ?", job_id)
        moved = job_now is None or destinations(loads(job_now["settings"]) or {}) != destinations(
            settings
        )
        if now is None or moved or now["sha256"] != row["sha256"]:
            # Deleted, uploaded again, or the job's output moved (a regenerate) while
            # this copy ran: the newer state delivers. What this copy left in the
            # folder is still this job's own file, which that delivery may replace.
            if now is not None and not moved and result.path is not None:
                self.store.run(
                    "UPDATE outputs SET delivered_sha256 = ? WHERE id = ?", row["sha256"], row["id"]
                )
            return views.output_json(now) if now is not None else views.output_json(row)
        self.store.run(
            "UPDATE outputs SET delivered_path = ?, delivery_note = ?,"
            " delivered_sha256 = coalesce(?, delivered_sha256) WHERE id = ?",
            result.path,
            result.note,
            row["sha256"] if result.path is not None else None,
            row["id"],
        )
        # Log trouble once: the sweep retries failed deliveries every few
        # seconds, and used to append the same line to the log each time.
        noteworthy = result.path is None or result.note.startswith("replaced")
        if noteworthy and result.note != row["delivery_note"]:
            self.ctx.append_log(job_id, row["task_id"], f"\n=== output {name}: {result.note} ===\n")
            if result.path is None:  # and to the admin, once per change, not once a sweep
                log.warning("job %d: output %s: %s", job_id, name, result.note)
        return views.output_json(self.store.one("SELECT * FROM outputs WHERE id = ?", row["id"]))

    def outputs(self, job_id: int, *, intermediate: bool = False) -> list[models.Output]:
        """The job's frames; with `intermediate`, also the files that only feed its
        other tasks (never delivered, so the pull and the add-on skip them)."""
        self.ctx.job_row(job_id)
        only_final = "" if intermediate else " AND intermediate = 0"
        return [
            views.output_json(r)
            for r in self.store.all(
                f"SELECT * FROM outputs WHERE job_id = ?{only_final} ORDER BY frame, name", job_id
            )
        ]

    def output_file(self, job_id: int, name: str) -> Path:
        self.ctx.job_row(job_id)
        if (
            self.store.one(
                "SELECT 1 FROM outputs WHERE job_id = ? AND name = ?",
                job_id,
                check_output_name(name),
            )
            is None
        ):
            raise NotFound(f"job {job_id} has no output named {name!r}")
        return self.files.output_path(job_id, name)

    async def clean_partial(self) -> int:
        """Remove the temporary files of copies a killed coordinator left half done
        in output folders (on start; a crash can't clean up after itself). Files
        written since this coordinator started belong to copies running now."""
        folders: dict[Path, set[str]] = {}
        for job in self.store.all(
            "SELECT id, settings FROM jobs WHERE deliver = 1 AND EXISTS"
            " (SELECT 1 FROM outputs o WHERE o.job_id = jobs.id AND o.intermediate = 0)"
        ):
            settings = loads(job["settings"]) or {}
            for r in self.store.all(
                "SELECT name, frame FROM outputs WHERE job_id = ? AND intermediate = 0", job["id"]
            ):  # a frame's folder, or a File Output file's own
                target = delivery_target(settings, r["name"], r["frame"])
                if isinstance(target, Path):
                    folders.setdefault(target.parent, set()).add(target.name)
        removed = 0
        for folder, names in folders.items():
            found = await asyncio.to_thread(
                remove_partial_deliveries, folder, names, before=self.ctx.started_at
            )
            for path in found:
                log.info("removed %s, left half-copied when the coordinator stopped", path)
                removed += 1
        return removed

    async def retry(self, now: float | None = None) -> int:
        """Deliver the outputs waiting for it: those whose folder could not be written
        (tried again every few seconds) and those a regenerate moved. Returns how many."""
        now = time.time() if now is None else now
        rows = self.store.all(
            # (the first two terms as the index outputs_to_deliver names them: its rows only)
            "SELECT o.job_id, o.name FROM outputs o JOIN jobs j ON j.id = o.job_id"
            " WHERE o.delivered_path IS NULL AND o.delivery_note != '' AND j.deliver = 1"
            " AND (o.delivery_note = ? OR (o.delivery_note LIKE 'could not write%'"
            " AND o.created_at < ?))",
            PENDING_DELIVERY,
            now - 5,
        )
        for row in rows:
            with contextlib.suppress(NotFound):  # the job was deleted meanwhile
                await self.deliver(row["job_id"], row["name"])
        return len(rows)


def redeliver(store: Store, job_id: int, frames: set[int]) -> None:
    """Have these frames delivered again (to a new output folder): the sweep
    copies them within a second, off the event loop."""
    marks = ",".join("?" * len(frames))
    store.run(
        "UPDATE outputs SET delivered_path = NULL, delivery_note = ?"
        f" WHERE job_id = ? AND frame IN ({marks}) AND intermediate = 0",
        PENDING_DELIVERY,
        job_id,
        *frames,
    )
