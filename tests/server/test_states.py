"""The state tables and the job-status function, table-driven (habit 5)."""

from __future__ import annotations

import enum
import itertools
from collections.abc import Mapping
from typing import Any

import pytest

from coordinator.core.protocol import JobStatus as J
from coordinator.core.protocol import TaskStatus as T
from coordinator.core.protocol import WorkerStatus as W
from coordinator.server import states

TABLES: list[tuple[str, Mapping[Any, frozenset[Any]], type[enum.StrEnum]]] = [
    ("job", states.JOB_TRANSITIONS, J),
    ("task", states.TASK_TRANSITIONS, T),
    ("worker", states.WORKER_TRANSITIONS, W),
]


# The tables as the design means them, written out again here so that a
# change to states.py must be made twice, on purpose.
EXPECTED: dict[str, dict[str, set[str]]] = {
    "job": {
        J.QUEUED: {J.ACTIVE, J.PAUSED, J.CANCELED, J.COMPLETED, J.FAILED},
        J.ACTIVE: {J.QUEUED, J.COMPLETED, J.FAILED, J.PAUSED, J.CANCELED},
        J.PAUSED: {J.QUEUED, J.ACTIVE, J.CANCELED, J.COMPLETED, J.FAILED},
        J.COMPLETED: {J.QUEUED},
        J.FAILED: {J.QUEUED, J.CANCELED},
        J.CANCELED: {J.QUEUED},
    },
    "task": {
        T.QUEUED: {T.ACTIVE, T.CANCELED, T.FAILED},
        T.ACTIVE: {T.COMPLETED, T.QUEUED, T.FAILED, T.CANCELED},
        T.COMPLETED: {T.QUEUED},
        T.FAILED: {T.QUEUED, T.CANCELED},
        T.CANCELED: {T.QUEUED},
    },
    "worker": {
        W.IDLE: {W.BUSY, W.OFFLINE, W.RESTING},
        W.BUSY: {W.IDLE, W.OFFLINE, W.RESTING},
        W.OFFLINE: {W.IDLE, W.BUSY, W.RESTING},
        W.RESTING: {W.IDLE, W.BUSY, W.OFFLINE},
    },
}
TABLE_BY_NAME = {name: table for name, table, _ in TABLES}
ENUM_BY_NAME = {name: enum for name, _, enum in TABLES}

ALLOWED = [
    (what, current, wanted)
    for what, rows in EXPECTED.items()
    for current, targets in rows.items()
    for wanted in sorted(targets)
]
REFUSED = [
    (what, current, wanted)
    for what, rows in EXPECTED.items()
    for current, wanted in itertools.permutations(list(ENUM_BY_NAME[what]), 2)
    if wanted not in rows[current]
]


@pytest.mark.parametrize("what", list(EXPECTED))
def test_tables_are_exactly_the_expected_ones(what: str) -> None:
    table = TABLE_BY_NAME[what]
    assert set(table) == set(ENUM_BY_NAME[what]), f"{what} table misses a status"
    assert {k: set(v) for k, v in table.items()} == EXPECTED[what]


@pytest.mark.parametrize(("what", "current", "wanted"), ALLOWED)
def test_allowed_transitions_pass(what: str, current: str, wanted: str) -> None:
    assert states.can(TABLE_BY_NAME[what], current, wanted)
    states.check(TABLE_BY_NAME[what], what, current, wanted)  # does not raise


@pytest.mark.parametrize("what", list(EXPECTED))
def test_staying_put_is_always_allowed(what: str) -> None:
    for status in ENUM_BY_NAME[what]:
        states.check(TABLE_BY_NAME[what], what, status, status)


@pytest.mark.parametrize(("what", "current", "wanted"), REFUSED)
def test_refused_transitions_say_what(what: str, current: str, wanted: str) -> None:
    """Every pair not allowed (terminal work does not restart or complete by itself)."""
    table = TABLE_BY_NAME[what]
    assert not states.can(table, current, wanted)
    with pytest.raises(states.InvalidTransition) as info:
        states.check(table, f"{what} 7", current, wanted)
    assert str(info.value) == f"{what} 7 is {current}; it cannot become {wanted}"
    assert (info.value.current, info.value.wanted) == (current, wanted)


def test_refusals_include_the_ones_that_matter() -> None:
    for pair in [
        ("job", J.COMPLETED, J.ACTIVE),
        ("job", J.FAILED, J.COMPLETED),
        ("job", J.CANCELED, J.ACTIVE),
        ("task", T.QUEUED, T.COMPLETED),
        ("task", T.COMPLETED, T.ACTIVE),
        ("task", T.FAILED, T.ACTIVE),
        ("task", T.CANCELED, T.COMPLETED),
    ]:
        assert pair in REFUSED


def test_unknown_status_is_refused() -> None:
    assert not states.can(states.JOB_TRANSITIONS, "exploded", J.QUEUED)
    assert not states.can(states.JOB_TRANSITIONS, J.QUEUED, "exploded")
    with pytest.raises(states.InvalidTransition, match="reason here"):
        raise states.InvalidTransition("job 1", "queued", "exploded", "reason here")


# (current job status, task counts) -> the job status they imply
STATUS_FROM_COUNTS = [
    # nothing started
    (J.QUEUED, {T.QUEUED: 5}, J.QUEUED),
    # one leased: active
    (J.QUEUED, {T.QUEUED: 4, T.ACTIVE: 1}, J.ACTIVE),
    # some done, none running: still active (it has started)
    (J.ACTIVE, {T.QUEUED: 3, T.COMPLETED: 2}, J.ACTIVE),
    # a task was requeued after its lease ran out, nothing finished yet
    (J.ACTIVE, {T.QUEUED: 5}, J.QUEUED),
    # all done
    (J.ACTIVE, {T.COMPLETED: 5}, J.COMPLETED),
    (J.QUEUED, {T.COMPLETED: 1}, J.COMPLETED),
    # an empty job has nothing left to do
    (J.QUEUED, {}, J.COMPLETED),
    # zero counts are the same as absent ones
    (J.ACTIVE, {T.COMPLETED: 3, T.QUEUED: 0, T.ACTIVE: 0}, J.COMPLETED),
    # one task out of attempts fails the job, even while others run
    (J.ACTIVE, {T.FAILED: 1, T.ACTIVE: 2, T.COMPLETED: 1}, J.FAILED),
    (J.ACTIVE, {T.FAILED: 1, T.COMPLETED: 4}, J.FAILED),
    (J.FAILED, {T.FAILED: 1, T.QUEUED: 2}, J.FAILED),
    # paused is held while work remains...
    (J.PAUSED, {T.QUEUED: 3}, J.PAUSED),
    (J.PAUSED, {T.QUEUED: 2, T.ACTIVE: 1, T.COMPLETED: 1}, J.PAUSED),
    # ...but a paused job whose work all finished is simply done
    (J.PAUSED, {T.COMPLETED: 3}, J.COMPLETED),
    (J.PAUSED, {T.FAILED: 1, T.QUEUED: 2}, J.FAILED),
    # canceled is a person's decision and stays, whatever the tasks say
    (J.CANCELED, {T.CANCELED: 3}, J.CANCELED),
    (J.CANCELED, {T.COMPLETED: 3}, J.CANCELED),
    (J.CANCELED, {T.FAILED: 1}, J.CANCELED),
    # a requeued (queued) job with completed work left over
    (J.QUEUED, {T.COMPLETED: 2, T.QUEUED: 1}, J.ACTIVE),
]


@pytest.mark.parametrize(("current", "counts", "expected"), STATUS_FROM_COUNTS)
def test_job_status_from_counts(current: J, counts: dict[T, int], expected: J) -> None:
    assert states.job_status_from_counts(current, counts) == expected


@pytest.mark.parametrize(("current", "counts", "expected"), STATUS_FROM_COUNTS)
def test_job_status_from_counts_accepts_plain_strings(
    current: J, counts: dict[T, int], expected: J
) -> None:
    """The store hands back plain strings; the function must read them the same."""
    plain = {str(k): v for k, v in counts.items()}
    assert states.job_status_from_counts(current, plain) == expected


@pytest.mark.parametrize(("current", "counts", "expected"), STATUS_FROM_COUNTS)
def test_implied_status_is_reachable(current: J, counts: dict[T, int], expected: J) -> None:
    """Whatever the function implies, the job table must allow getting there."""
    states.check(states.JOB_TRANSITIONS, "job", current, expected)
