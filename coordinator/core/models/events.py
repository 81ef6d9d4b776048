"""The live event stream's data.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, Literal, NotRequired, TypedDict

from coordinator.core.models.common import Fraction, Id
from coordinator.core.protocol import WorkerStatus


class Event(TypedDict):
    """One server-sent event's `data:`; its `event:` line repeats the type."""

    type: Annotated[
        Literal[
            "job",
            "job-deleted",
            "task",
            "worker",
            "worker-removed",
            "output",
            "resync",
            "shutdown",
        ],
        "what changed; resync: events were dropped, reload what you show;"
        " shutdown: the coordinator stops",
    ]
    id: NotRequired[Annotated[int | str, "the job's, task's (numbers) or worker's (text) id"]]
    job_id: NotRequired[Annotated[Id, "the job of a task or output"]]
    status: NotRequired[Annotated[WorkerStatus, "a worker's new status"]]
    progress: NotRequired[Annotated[Fraction | None, "a task's new progress, if it changed"]]
    activity: NotRequired[Annotated[str | None, "a task's new activity, if it changed"]]
    log: NotRequired[Annotated[bool, "a task's log has new text"]]
    name: NotRequired[Annotated[str, "an output's file name"]]
    frame: NotRequired[Annotated[int | None, "an output's frame"]]
