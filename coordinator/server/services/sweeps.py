"""The background sweep: leases that ran out and workers that went quiet.

The app runs it every `sweep_interval` seconds; tests call it with a `now` in
the future instead of waiting.
"""

from __future__ import annotations

import logging
import time

from coordinator.core.protocol import WorkerStatus
from coordinator.server import scheduler
from coordinator.server.services.context import Service
from coordinator.server.services.retries import requeue_lost

log = logging.getLogger(__name__)

# An idle worker is heard from at least once per task long-poll (at most this long).
IDLE_POLL_MAX = 60.0


class SweepService(Service):
    def sweep(self, now: float | None = None) -> None:
        """Expire leases of silent workers and mark them offline."""
        now = time.time() if now is None else now
        for task_id, worker_id in scheduler.expired_leases(self.store, now):
            log.warning("task %d: worker %s stopped reporting; requeueing", task_id, worker_id)
            requeue_lost(
                self.ctx,
                task_id,
                worker_id,
                f"worker {worker_id} stopped responding (lease expired)",
                interrupted=True,
            )
        for row in self.store.all(
            "SELECT id FROM workers WHERE status != 'offline' AND last_seen < ?",
            now - self.config.lease_seconds - IDLE_POLL_MAX,
        ):
            log.warning("worker %s went offline", row["id"])
            self.ctx.set_worker_status(row["id"], WorkerStatus.OFFLINE)

    def extend_leases(self, why: str, now: float | None = None) -> int:
        """Give every running task at least one full lease from now.

        For when the coordinator itself was away (restarted, paused, suspended,
        its event loop blocked): its workers could not renew their leases, and
        expiring them would requeue work that is still being rendered and count
        the coordinator's outage as a failed attempt of the task.
        """
        now = time.time() if now is None else now
        lease = self.config.lease_seconds
        count = self.store.run(
            "UPDATE tasks SET lease_expires = ? WHERE status = 'active' AND lease_expires < ?",
            now + lease,
            now + lease,
        ).rowcount
        if count:
            log.warning(
                "%s: giving the workers of %d running task(s) %g s to report", why, count, lease
            )
        return count
