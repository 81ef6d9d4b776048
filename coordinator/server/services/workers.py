"""Workers: registration, who a request's secret belongs to, and a person's
actions on a worker (disable, enable, remove).

A worker's secret is stored only as its hash: a copy of the database lets
nobody act as a worker.
"""

from __future__ import annotations

import hashlib
import logging
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

from coordinator.core import models, trust
from coordinator.core.protocol import WorkerStatus
from coordinator.server import views
from coordinator.server.errors import Conflict, Unauthorized
from coordinator.server.job_types.schema import JSON
from coordinator.server.services.context import Service, version_number
from coordinator.server.services.retries import requeue_held_by
from coordinator.server.store import dumps

log = logging.getLogger(__name__)

# last_seen is written at most this often per worker (seconds)
LAST_SEEN_RESOLUTION = 1.0
# The furthest a rest may reach: working hours begin again within a day.
MAX_REST = 2 * 86400.0


@dataclass(frozen=True)
class NewWorker:
    """A worker that asks to join, as the API checked it."""

    name: str  # shown to people; need not be unique
    blender_version: str  # e.g. "4.2.1"; a job needs at least its .blend's version
    host: str = ""  # the machine it runs on, for people
    devices: tuple[str, ...] = ()  # render devices it offers (matched to a job's needs)
    tags: tuple[str, ...] = ()  # its pools: a job may require them (pools.py)
    capabilities: Mapping[str, object] = field(default_factory=dict)  # engines, memory, OS


class WorkerService(Service):
    def register(self, new: NewWorker) -> models.WorkerCredentials:
        worker_id, secret, now = str(uuid.uuid4()), trust.new_worker_secret(), time.time()
        with self.store.tx():
            self.store.run(
                "INSERT INTO workers (id, name, host, secret_hash, status, blender_version,"
                " blender, devices, tags, capabilities, last_seen, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                worker_id,
                new.name,
                new.host,
                _hash_secret(secret),
                WorkerStatus.IDLE,
                new.blender_version,
                version_number(new.blender_version),
                dumps(list(new.devices)),
                dumps(list(new.tags)),
                dumps(dict(new.capabilities)),
                now,
                now,
            )
        log.info("worker registered: %s (%s, Blender %s)", new.name, worker_id, new.blender_version)
        self.hub.publish("worker", id=worker_id)
        return views.credentials_json(worker_id, secret, self.config.lease_seconds)

    def authenticate(self, secret: str) -> JSON:
        """The worker this secret belongs to; hearing from an offline one brings it back."""
        row = self.store.one("SELECT * FROM workers WHERE secret_hash = ?", _hash_secret(secret))
        if row is None:
            raise Unauthorized("unknown worker credentials; register the worker again")
        now = time.time()
        if row["status"] == WorkerStatus.OFFLINE:
            holds = self.store.one(
                "SELECT 1 FROM tasks WHERE worker_id = ? AND status = 'active'", row["id"]
            )
            self.ctx.set_worker_status(row["id"], WorkerStatus.BUSY if holds else WorkerStatus.IDLE)
        if now - row["last_seen"] > LAST_SEEN_RESOLUTION:  # spare a write per request
            self.store.run("UPDATE workers SET last_seen = ? WHERE id = ?", now, row["id"])
        return dict(row)

    def all(self) -> list[models.Worker]:
        rows = self.store.all("SELECT * FROM workers ORDER BY name, id")
        current = {
            r["worker_id"]: r
            for r in self.store.all(
                "SELECT id, job_id, name, worker_id FROM tasks WHERE status = 'active'"
            )
        }
        return [views.worker_json(r, current.get(r["id"])) for r in rows]

    def get(self, worker_id: str) -> models.Worker:
        row = self.ctx.worker_row(worker_id)
        task = self.store.one(
            "SELECT id, job_id, name FROM tasks WHERE worker_id = ? AND status = 'active'",
            worker_id,
        )
        return views.worker_json(row, task)

    def counts(self) -> dict[str, int]:
        """How many workers are in each status (for health and the advertisement)."""
        rows = self.store.all("SELECT status, count(*) AS n FROM workers GROUP BY status")
        return {r["status"]: r["n"] for r in rows}

    def online(self) -> int:
        return sum(n for status, n in self.counts().items() if status != WorkerStatus.OFFLINE)

    def report(
        self,
        worker: JSON,
        *,
        blender_version: str,
        devices: tuple[str, ...],
        capabilities: Mapping[str, object],
    ) -> None:
        """What the worker can do now replaces what it said before (a new Blender,
        another GPU): jobs it now fits may go to it from its next request."""
        self.store.run(
            "UPDATE workers SET blender_version = ?, blender = ?, devices = ?, capabilities = ?"
            " WHERE id = ?",
            blender_version,
            version_number(blender_version),
            dumps(list(devices)),
            dumps(dict(capabilities)),
            worker["id"],
        )
        self.hub.notify_work()
        self.hub.publish("worker", id=worker["id"])

    def rest(self, worker: JSON, until: float) -> None:
        """Outside its working hours until `until`: it keeps no task (a held one goes back
        to the queue, as an interruption) and shows as resting; it says so again every
        30 s, which keeps it from being swept offline."""
        why = "the worker's working hours ended"
        requeue_held_by(self.ctx, worker["id"], why, interrupted=True)
        until = min(until, time.time() + MAX_REST)  # a day's hours begin within a day
        if worker["status"] != WorkerStatus.RESTING or worker["resting_until"] != until:
            self.ctx.set_worker_status(worker["id"], WorkerStatus.RESTING)
            self.store.run("UPDATE workers SET resting_until = ? WHERE id = ?", until, worker["id"])
            self.hub.publish("worker", id=worker["id"])
        if worker["status"] != WorkerStatus.RESTING:
            log.info("worker %s resting (working hours) until %s", worker["name"], _clock(until))

    def wake(self, worker: JSON) -> JSON:
        """A resting worker asking for work again: its working hours began."""
        if worker["status"] != WorkerStatus.RESTING:
            return worker
        self.ctx.set_worker_status(worker["id"], WorkerStatus.IDLE)
        self.store.run("UPDATE workers SET resting_until = NULL WHERE id = ?", worker["id"])
        log.info("worker %s: working hours began", worker["name"])
        return {**worker, "status": WorkerStatus.IDLE, "resting_until": None}

    def sign_off(self, worker: JSON) -> None:
        """A worker leaving on purpose hands its task back at once."""
        requeue_held_by(self.ctx, worker["id"], "the worker shut down", interrupted=True)
        self.ctx.set_worker_status(worker["id"], WorkerStatus.OFFLINE)

    # ----------------------------------------------- a person's worker actions
    def disable(self, worker_id: str, *, now: bool = False) -> models.Worker:
        """No new tasks for this worker. Its current task finishes first, or with
        `now` goes straight back to the queue (not counted as a failure)."""
        row = self.ctx.worker_row(worker_id)
        if row["disabled"] and not (now and row["status"] == WorkerStatus.BUSY):
            raise Conflict(f"worker {row['name']} is disabled already")
        self.store.run("UPDATE workers SET disabled = 1 WHERE id = ?", worker_id)
        if now:
            reason = f"worker {row['name']} was disabled"
            requeue_held_by(self.ctx, worker_id, reason)
            if row["status"] == WorkerStatus.BUSY:
                self.ctx.set_worker_status(worker_id, WorkerStatus.IDLE)
        log.info("worker %s disabled%s", row["name"], " now" if now else "")
        self.hub.publish("worker", id=worker_id)
        return self.get(worker_id)

    def enable(self, worker_id: str) -> models.Worker:
        row = self.ctx.worker_row(worker_id)
        if not row["disabled"]:
            raise Conflict(f"worker {row['name']} is not disabled; nothing to enable")
        self.store.run("UPDATE workers SET disabled = 0 WHERE id = ?", worker_id)
        log.info("worker %s enabled", row["name"])
        self.hub.notify_work()  # its task long-poll may claim again
        self.hub.publish("worker", id=worker_id)
        return self.get(worker_id)

    def set_tags(self, worker_id: str, tags: list[str]) -> models.Worker:
        """Replace the worker's tags (its pools); jobs requiring them may now go to it."""
        row = self.ctx.worker_row(worker_id)
        self.store.run("UPDATE workers SET tags = ? WHERE id = ?", dumps(tags), worker_id)
        log.info("worker %s tagged %s", row["name"], ", ".join(tags) or "(none)")
        self.hub.notify_work()  # its task long-poll may claim a job it now fits
        self.hub.publish("worker", id=worker_id)
        return self.get(worker_id)

    def remove(self, worker_id: str) -> None:
        """Forget an offline worker. A running agent would simply register again,
        so an online one is refused."""
        row = self.ctx.worker_row(worker_id)
        if row["status"] != WorkerStatus.OFFLINE:
            raise Conflict(
                f"worker {row['name']} is {row['status']}; only an offline worker can be"
                " removed (a running agent registers again): stop its agent, or disable it"
            )
        requeue_held_by(self.ctx, worker_id, "the worker was removed")
        self.store.run("DELETE FROM workers WHERE id = ?", worker_id)
        log.info("worker %s (%s) removed", row["name"], worker_id)
        self.hub.publish("worker-removed", id=worker_id)


def _clock(at: float) -> str:
    return time.strftime("%H:%M", time.localtime(at))


def _hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()
