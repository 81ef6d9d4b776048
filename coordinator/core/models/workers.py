"""Workers as people see and steer them, and a worker's registration.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

from typing import Annotated, Literal, NotRequired, TypedDict

from coordinator.core.models.common import Id, Limits, Timestamp, WorkerAction
from coordinator.core.protocol import WorkerStatus


class WorkerTask(TypedDict):
    """The task a worker runs."""

    id: Annotated[Id, "the task's id"]
    job_id: Annotated[Id, "its job"]
    name: Annotated[str, "the task's name"]


class WorkerCapabilities(TypedDict):
    """What a worker's agent reports it can do, for matching jobs and for people."""

    engines: NotRequired[
        Annotated[list[str], "render engines its Blender has, e.g. CYCLES, BLENDER_EEVEE"]
    ]
    memory_mb: NotRequired[Annotated[int, "its machine's memory, MiB", Limits(minimum=0)]]
    os: NotRequired[Annotated[str, "its operating system, e.g. linux, windows, darwin"]]


class Worker(TypedDict):
    """A registered worker as people see it."""

    id: Annotated[str, "the worker's id"]
    name: Annotated[str, "its name (the machine's, unless its agent was given one)"]
    host: Annotated[str, "its host name or address, as it said"]
    status: Annotated[
        WorkerStatus,
        "idle, busy, resting (outside its working hours: see resting_until) or offline",
    ]
    resting_until: Annotated[
        Timestamp | None, "while it rests: when its working hours begin again; else null"
    ]
    disabled: Annotated[bool, "takes no new tasks"]
    blender_version: Annotated[str, "its Blender"]
    devices: Annotated[list[str], "render devices it offers, e.g. CPU, CUDA"]
    tags: Annotated[list[str], "its pools: labels a job may require (--tag, or PUT .../tags)"]
    capabilities: Annotated[WorkerCapabilities, "what its agent reported it can do"]
    last_seen: Annotated[Timestamp, "when it was last heard from"]
    task: Annotated[WorkerTask | None, "the task it runs, if any"]
    actions: Annotated[list[WorkerAction], "the actions a person can take on it now"]


class WorkerTags(TypedDict):
    """A worker's new tags."""

    tags: Annotated[
        list[str],
        "all its tags (replacing the old): each 1-64 letters, digits, '_', '.' or '-' (at most 32)",
    ]


class WorkerList(TypedDict):
    """Every registered worker."""

    workers: Annotated[list[Worker], "by name"]


class WorkerRegistration(TypedDict):
    """A worker agent introducing itself with the farm token."""

    name: Annotated[str, "its name", Limits(max_length=200)]
    blender_version: Annotated[str, "its Blender's version", Limits(max_length=32, example="4.2.3")]
    host: NotRequired[Annotated[str, "its host name or address", Limits(max_length=255)]]
    devices: NotRequired[Annotated[list[str], "render devices it offers (at most 64)"]]
    tags: NotRequired[
        Annotated[list[str], "its pools (at most 32, each 1-64 letters, digits, '_', '.', '-')"]
    ]
    capabilities: NotRequired[Annotated[WorkerCapabilities, "what it can do"]]


class WorkerReport(TypedDict):
    """What a worker can do now, said each time its agent starts with saved
    credentials: a new Blender, another GPU or more memory count from then on."""

    blender_version: Annotated[str, "its Blender's version", Limits(max_length=32, example="4.2.3")]
    devices: NotRequired[Annotated[list[str], "render devices it offers (at most 64)"]]
    capabilities: NotRequired[Annotated[WorkerCapabilities, "what it can do"]]


class WorkerCredentials(TypedDict):
    """What a worker needs to take part: send the secret on every /worker/ request."""

    worker_id: Annotated[str, "its id"]
    secret: Annotated[str, "its own bearer token; shown only once"]
    lease_seconds: Annotated[float, "report at least this often or lose the task you hold"]


class DisableRequest(TypedDict):
    """When a disabled worker stops working."""

    now: NotRequired[
        Annotated[
            bool,
            "hand its task back to the queue at once (not counted as a failure)"
            " instead of letting it finish",
            Limits(default=False),
        ]
    ]


class Removed(TypedDict):
    """A worker is forgotten."""

    removed: Annotated[Literal[True], "always true"]
