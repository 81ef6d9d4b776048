"""The state machines of jobs, tasks and workers: one table each.

Every status change in the coordinator goes through `check()`, so a
refused action always says which transition was asked for and why not.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from coordinator.core.protocol import JobStatus as J
from coordinator.core.protocol import TaskStatus as T
from coordinator.core.protocol import WorkerStatus as W

# from -> the statuses it may move to
JOB_TRANSITIONS: Mapping[J, frozenset[J]] = {
    J.QUEUED: frozenset({J.ACTIVE, J.PAUSED, J.CANCELED, J.COMPLETED, J.FAILED}),
    J.ACTIVE: frozenset({J.QUEUED, J.COMPLETED, J.FAILED, J.PAUSED, J.CANCELED}),
    J.PAUSED: frozenset({J.QUEUED, J.ACTIVE, J.CANCELED, J.COMPLETED, J.FAILED}),
    J.COMPLETED: frozenset({J.QUEUED}),  # requeue / regenerate
    J.FAILED: frozenset({J.QUEUED, J.CANCELED}),
    J.CANCELED: frozenset({J.QUEUED}),  # requeue
}

TASK_TRANSITIONS: Mapping[T, frozenset[T]] = {
    T.QUEUED: frozenset({T.ACTIVE, T.CANCELED, T.FAILED}),
    T.ACTIVE: frozenset({T.COMPLETED, T.QUEUED, T.FAILED, T.CANCELED}),
    T.COMPLETED: frozenset({T.QUEUED}),
    T.FAILED: frozenset({T.QUEUED, T.CANCELED}),
    T.CANCELED: frozenset({T.QUEUED}),
}

WORKER_TRANSITIONS: Mapping[W, frozenset[W]] = {
    W.IDLE: frozenset({W.BUSY, W.OFFLINE, W.RESTING}),
    W.BUSY: frozenset({W.IDLE, W.OFFLINE, W.RESTING}),
    W.OFFLINE: frozenset({W.IDLE, W.BUSY, W.RESTING}),
    # outside its working hours; its next request for work ends the rest
    W.RESTING: frozenset({W.IDLE, W.BUSY, W.OFFLINE}),
}


class InvalidTransition(Exception):
    """A status change that the tables do not allow."""

    def __init__(self, what: str, current: str, wanted: str, reason: str = "") -> None:
        self.what, self.current, self.wanted = what, current, wanted
        message = f"{what} is {current}; it cannot become {wanted}"
        super().__init__(f"{message}: {reason}" if reason else message)


def can(table: Mapping[Any, frozenset[Any]], current: str, wanted: str) -> bool:
    return current == wanted or wanted in table.get(current, frozenset())


def check(table: Mapping[Any, frozenset[Any]], what: str, current: str, wanted: str) -> None:
    """Raise InvalidTransition unless current -> wanted is allowed (or a no-op)."""
    if not can(table, current, wanted):
        raise InvalidTransition(what, current, wanted)


def job_status_from_counts(current: J, counts: Mapping[Any, int]) -> J:
    """The job's status that its task counts imply.

    Held statuses (paused, canceled) are a person's decision and stay until a
    person lifts them, except that a paused job whose work all finished is
    simply completed (or failed).
    """
    total = sum(counts.values())
    active = counts.get(T.ACTIVE, 0)
    completed = counts.get(T.COMPLETED, 0)
    failed = counts.get(T.FAILED, 0)
    if current == J.CANCELED:
        return J.CANCELED
    if total == 0 or completed == total:
        return J.COMPLETED
    if failed:
        # One task out of attempts fails the job: nothing new is handed out,
        # tasks already running finish and deliver their frames.
        return J.FAILED
    if not counts.get(T.QUEUED, 0) and not active:
        # Only completed and canceled tasks are left: a person canceled the
        # rest one by one, so nothing will ever run. It used to stay active.
        return J.CANCELED
    if current == J.PAUSED:
        return J.PAUSED
    if active or completed:
        return J.ACTIVE
    return J.QUEUED


# ------------------------------------------------------------ people's actions
# What a person may do to a job, by the job's status. The API refuses the rest
# with the reason, and the job's JSON lists the ones that apply (`actions`), so
# the dashboard and the add-on offer exactly what the coordinator will accept.
JOB_ACTIONS: Mapping[str, frozenset[J]] = {
    "cancel": frozenset({J.QUEUED, J.ACTIVE, J.PAUSED, J.FAILED}),
    "pause": frozenset({J.QUEUED, J.ACTIVE}),
    "resume": frozenset({J.PAUSED}),
    "requeue": frozenset(J),  # failed and canceled tasks; needs some (see job_actions)
    "requeue-all": frozenset(J) - {J.ACTIVE},  # finished tasks too; not while rendering
    "regenerate": frozenset(J),
    "priority": frozenset(J),
    "clear-blocklist": frozenset(J),  # needs a blocklisted worker
    "delete": frozenset(J),
}


def job_actions(status: str, counts: Mapping[Any, int], *, blocklisted: bool) -> list[str]:
    """The actions that apply to a job with this status and these task counts."""
    retry = counts.get(T.FAILED, 0) + counts.get(T.CANCELED, 0)
    done = retry + counts.get(T.COMPLETED, 0)
    needs = {"requeue": retry > 0, "requeue-all": done > 0, "clear-blocklist": blocklisted}
    return [
        action
        for action, allowed in JOB_ACTIONS.items()
        if status in allowed and needs.get(action, True)
    ]


# What a person may do to one task, by its status: requeue runs it again
# (stopping it first when a worker has it); cancel stops it for good.
TASK_ACTIONS: Mapping[str, frozenset[T]] = {
    "requeue": frozenset({T.ACTIVE, T.COMPLETED, T.FAILED, T.CANCELED}),
    "cancel": frozenset({T.QUEUED, T.ACTIVE, T.FAILED}),
}


def task_actions(status: str, *, current: bool) -> list[str]:
    """Actions on a task; none on one from an earlier generation of its job."""
    if not current:
        return []
    return [action for action, allowed in TASK_ACTIONS.items() if status in allowed]


def worker_actions(status: str, *, disabled: bool) -> list[str]:
    """Disable (after its task, or now), enable, or remove (only once it is offline:
    a running agent whose record is removed simply registers again)."""
    out = ["enable"] if disabled else ["disable"]
    if status == W.BUSY:
        out.append("disable-now")
    if status == W.OFFLINE:
        out.append("remove")
    return out
