"""The worker protocol's bodies: assignments, reports, completions.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, Any, Literal, NotRequired, TypedDict

from coordinator.core.models.common import _WARM, Fraction, Id, Limits, Sha256, Timestamp
from coordinator.core.models.jobs import TaskStages
from coordinator.core.protocol import TaskStatus


class Assignment(TypedDict):
    """A task handed to a worker."""

    # coordinator.core.protocol.Assignment.to_json() writes it; from_json() reads it.

    task_id: Annotated[Id, "the task"]
    job_id: Annotated[Id, "its job"]
    job_name: Annotated[str, "its job's name, for log lines"]
    kind: Annotated[str, "what to run: render, merge, sleep, ..."]
    payload: Annotated[dict[str, Any], "the kind's own fields"]
    attempt: Annotated[int, "1 for the first try", Limits(minimum=1)]
    lease_seconds: Annotated[float, "report at least this often or lose the task"]
    blend: Annotated[str | None, "the job's main .blend, relative to its file tree"]
    files: Annotated[dict[str, Sha256], "project path -> sha256 of the job's files to download"]
    inputs: Annotated[
        dict[str, Sha256],
        "output name -> sha256 of what the tasks it depends on produced (their"
        " completed attempts); download each from /worker/tasks/{task_id}/inputs/{name}",
    ]


class Upcoming(TypedDict):
    """The job a worker would most likely get next: what a claim would give it now
    (nothing is claimed), for fetching its files while the current task renders."""

    job_id: Annotated[Id | None, "that job; null when none is runnable for this worker"]
    blend: NotRequired[
        Annotated[str | None, "its main .blend; only when job_id is not the warm_job asked with"]
    ]
    files: NotRequired[
        Annotated[
            dict[str, Sha256],
            "project path -> sha256, as an assignment's files; only when job_id is not"
            " the warm_job asked with",
        ]
    ]
    sizes: NotRequired[
        Annotated[
            dict[str, int],
            "sha256 -> bytes of each of those files the coordinator holds",
        ]
    ]


class TaskUpdate(TypedDict):
    """A worker's report on the task it holds; it also renews the lease."""

    progress: NotRequired[Annotated[Fraction, "how far the task got"]]
    activity: NotRequired[Annotated[str, "what it does now", Limits(max_length=500)]]
    log: NotRequired[Annotated[str, "log text to append (at most 256 KiB a report)"]]
    stages: NotRequired[Annotated[TaskStages, "stages reached since the last report"]]


class UpdateAnswer(TypedDict):
    """Go on (a task that must stop gets 409, or `stop` from its control poll)."""

    action: Annotated[Literal["continue"], "always continue"]


class Control(TypedDict):
    """Whether the worker must stop its task."""

    action: Annotated[Literal["continue", "stop"], "stop: abandon the task now"]
    reason: NotRequired[Annotated[str, "why it must stop; only with stop"]]


class ClaimRequest(TypedDict):
    """A worker asking for work (the body may also be empty)."""

    warm_job: NotRequired[Annotated[Id | None, _WARM]]


class CompleteRequest(TypedDict):
    """A finished task; optionally asking for the next one in the same round trip."""

    next: NotRequired[
        Annotated[bool, "also claim the next task when one is runnable", Limits(default=False)]
    ]
    warm_job: NotRequired[Annotated[Id | None, _WARM + " (with next=true)"]]


class CompleteAnswer(TypedDict):
    """The completion is recorded (a repeated completion too)."""

    ok: Annotated[Literal[True], "always true"]
    next: NotRequired[
        Annotated[
            Assignment | None,
            "only with next=true: the next task, or null when none is runnable now"
            " (then long-poll /worker/task)",
        ]
    ]


class FailRequest(TypedDict):
    """A task the worker could not finish."""

    reason: Annotated[str, "what went wrong (the first 2000 characters are kept)"]
    log: NotRequired[Annotated[str, "log text to append"]]
    job_fault: NotRequired[
        Annotated[
            bool,
            "the failure is the job's own and every worker would meet the same, whatever its"
            " version or OS (files its project lacks, a scene or camera the .blend does not"
            " have, a task naming no .blend of the job): the task fails at once, without"
            " retries, and the failure does not count against this worker",
            Limits(default=False),
        ]
    ]


class FailAnswer(TypedDict):
    """What became of the failed task."""

    task_status: Annotated[
        TaskStatus,
        "queued: it will be tried again; failed: it ran out of attempts, or the worker"
        " said every worker would meet the same (job_fault)",
    ]


class RestRequest(TypedDict):
    """A worker outside its working hours (`--work-hours`): it takes no task until
    `until`, and says so again every 30 s while it rests (its heartbeat); its next
    request for work ends the rest."""

    until: Annotated[Timestamp, "when its working hours begin again (Unix time)"]


class Ok(TypedDict):
    """Done."""

    ok: Annotated[Literal[True], "always true"]
