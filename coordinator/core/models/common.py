"""Shared pieces of the wire models: field limits, ids, hashes, times, the
actions a person may take, and the error body every refusal has.

No `from __future__ import annotations` here: Python 3.11 would not see
`NotRequired` inside postponed annotations (see the package's docstring).
"""

import enum
from dataclasses import dataclass
from typing import Annotated, Any, Literal, NewType, NotRequired, TypedDict


class _Unset(enum.Enum):
    UNSET = "unset"


UNSET = _Unset.UNSET


@dataclass(frozen=True)
class Limits:
    """JSON Schema keywords of a field beyond its type (the document shows them)."""

    minimum: float | None = None  # smallest number allowed
    maximum: float | None = None  # largest number allowed
    max_length: int | None = None  # most characters a text may have
    pattern: str | None = None  # a regular expression the whole text matches
    default: object = UNSET  # what the server uses when a request leaves it out
    example: object = UNSET  # a typical value, for readers of the document


# --------------------------------------------------------------- shared types
Id = Annotated[int, Limits(minimum=1)]
Sha256 = Annotated[str, Limits(pattern="^[0-9a-f]{64}$")]
Timestamp = Annotated[float, Limits(minimum=0)]  # seconds since 1970 (Unix time)
Fraction = Annotated[float, Limits(minimum=0, maximum=1)]
Seconds = Annotated[float, Limits(minimum=0, maximum=30 * 86400)]
_STAGE = "seconds after the worker got the task (by its own clock) when "
_WARM = "the job its warm Blender holds: its next task first unless a higher priority waits"
# A job type's settings, as validated by it: the document's JobSettings
# component is generated from the job types' own schemas.
JobSettings = NewType("JobSettings", dict[str, Any])

JobAction = Literal[
    "cancel",
    "pause",
    "resume",
    "requeue",
    "requeue-all",
    "regenerate",
    "priority",
    "clear-blocklist",
    "delete",
]
TaskAction = Literal["requeue", "cancel"]
WorkerAction = Literal["disable", "disable-now", "enable", "remove"]


class Error(TypedDict):
    """Every refusal (4xx) and internal error: what is wrong and what to do."""

    error: Annotated[str, "what is wrong and what to do about it"]
    field: NotRequired[Annotated[str, "the request field at fault, when one is"]]


class NoFields(TypedDict):
    """An action that takes no fields: the body is empty or `{}`; anything else is refused."""
