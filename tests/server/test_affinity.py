"""Affinity on a real SQLite file: a worker that has a job warm gets that job's
next task among equals, and never at the cost of something of higher priority.

Each case names the farm (jobs in submission order, each with its priority
and the task priorities of its tasks), the job the worker has warm, and the
job whose task it must get.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import pytest

from coordinator.server import scheduler
from coordinator.server.farm import Farm
from coordinator.server.services.jobs import NewJob
from coordinator.server.services.workers import NewWorker

BLENDER_4_2 = 4002


@dataclass(frozen=True)
class Case:
    jobs: dict[str, int]  # name -> job priority, in submission order
    warm: str | None  # the job the worker has warm (a name; "gone" for a deleted job)
    gets: str | None  # the job whose next task it gets
    task_priority: dict[str, int] = field(default_factory=dict)  # name -> its tasks' priority
    held: tuple[str, ...] = ()  # jobs a person paused
    claimed: tuple[str, ...] = ()  # jobs whose every task another worker runs
    blocklisted: tuple[str, ...] = ()  # jobs that blocklisted the worker
    min_blender: dict[str, int] = field(default_factory=dict)  # name -> Blender it needs


CASES = {
    "no warm job: the oldest of the top priority": Case({"a": 50, "b": 50}, None, "a"),
    "the warm job among equals": Case({"a": 50, "b": 50}, "b", "b"),
    "the warm job is the oldest anyway": Case({"a": 50, "b": 50}, "a", "a"),
    "the warm job among three equals": Case({"a": 50, "b": 50, "c": 50}, "c", "c"),
    "a higher-priority job first": Case({"a": 50, "b": 80}, "a", "b"),
    "a higher-priority job, submitted earlier": Case({"a": 80, "b": 50}, "b", "a"),
    "the warm job has the higher priority": Case({"a": 50, "b": 80}, "b", "b"),
    "a higher-priority task of an equal job first": Case(
        {"a": 50, "b": 50}, "b", "a", task_priority={"a": 10, "b": 0}
    ),
    "the warm job's task priority as high": Case(
        {"a": 50, "b": 50}, "b", "b", task_priority={"a": 10, "b": 10}
    ),
    "the warm job's task priority higher": Case(
        {"a": 50, "b": 50}, "b", "b", task_priority={"a": 0, "b": 10}
    ),
    "the warm job has nothing runnable": Case({"a": 50, "b": 50}, "b", "a", claimed=("b",)),
    "the warm job is paused": Case({"a": 50, "b": 50}, "b", "a", held=("b",)),
    "the warm job blocklisted the worker": Case({"a": 50, "b": 50}, "b", "a", blocklisted=("b",)),
    "the warm job needs a newer Blender": Case(
        {"a": 50, "b": 50}, "b", "a", min_blender={"b": 5000}
    ),
    "the warm job was deleted": Case({"a": 50, "b": 50}, "gone", "a"),
    "only the warm job is left": Case({"a": 50, "b": 50}, "b", "b", claimed=("a",)),
    "nothing runnable at all": Case({"a": 50}, "a", None, claimed=("a",)),
    "a lower-priority warm job waits for the top one": Case({"a": 50, "b": 50, "c": 90}, "b", "c"),
}


def _build(farm: Farm, case: Case) -> dict[str, int]:
    ids = {}
    for name, priority in case.jobs.items():
        job = farm.jobs.submit(
            NewJob(name=name, type="sleep", settings={"task_count": 4}, files={}, priority=priority)
        )
        ids[name] = int(job["id"])
    store = farm.ctx.store
    for name, job_id in ids.items():
        store.run(
            "UPDATE tasks SET priority = ? WHERE job_id = ?",
            case.task_priority.get(name, 0),
            job_id,
        )
        store.run(
            "UPDATE jobs SET min_blender = ? WHERE id = ?", case.min_blender.get(name, 0), job_id
        )
    for name in case.held:
        farm.jobs.pause(ids[name])
    for name in case.claimed:
        store.run(
            "UPDATE tasks SET status = 'active', worker_id = 'other' WHERE job_id = ?", ids[name]
        )
    for name in case.blocklisted:
        first = store.one("SELECT id FROM tasks WHERE job_id = ? ORDER BY idx", ids[name])
        assert first is not None
        for _ in range(scheduler.BLOCKLIST_THRESHOLD):
            store.run(
                "INSERT INTO task_failures (task_id, job_id, worker_id, reason, blamed, at)"
                " VALUES (?, ?, 'w', 'broke', 1, 0)",
                first["id"],
                ids[name],
            )
    return ids


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_which_job_a_worker_with_a_warm_job_gets(
    make_farm: Callable[..., Farm], case: Case
) -> None:
    farm = make_farm()
    ids = _build(farm, case)
    warm = None if case.warm is None else ids.get(case.warm, max(ids.values()) + 100)
    claimed = scheduler.claim(
        farm.ctx.store, worker_id="w", blender=BLENDER_4_2, lease_seconds=60, warm_job=warm
    )
    if case.gets is None:
        assert claimed is None
        return
    assert claimed is not None
    names = {job_id: name for name, job_id in ids.items()}
    assert names[claimed.job_id] == case.gets
    # ... and that job's next task in its own order: the first by index
    first = farm.ctx.store.one(
        "SELECT min(id) AS id FROM tasks WHERE job_id = ? AND worker_id IS NOT 'other'"
        " AND (status = 'queued' OR id = ?)",
        claimed.job_id,
        claimed.task_id,
    )
    assert first is not None and first["id"] == claimed.task_id


def test_workers_keep_to_their_warm_jobs_until_one_runs_out(
    make_farm: Callable[..., Farm],
) -> None:
    """Two workers, two equal jobs: each renders its own job's tasks in order, then
    helps with the other's rest, through the service the API calls."""
    farm = make_farm()
    a, b = (
        int(
            farm.jobs.submit(
                NewJob(name=n, type="sleep", settings={"task_count": count}, files={})
            )["id"]
        )
        for n, count in (("a", 3), ("b", 6))
    )
    workers = [
        farm.workers.authenticate(
            farm.workers.register(NewWorker(name=n, blender_version="4.2"))["secret"]
        )
        for n in ("wa", "wb")
    ]
    warm = {"wa": a, "wb": b}
    got: dict[str, list[int]] = {"wa": [], "wb": []}
    for _ in range(4):
        for worker in workers:
            assignment = farm.tasks.claim(worker, warm_job=warm[worker["name"]])
            assert assignment is not None
            got[worker["name"]].append(assignment.job_id)
            warm[worker["name"]] = assignment.job_id
            farm.tasks.complete(worker, assignment.task_id)
    assert got == {"wa": [a, a, a, b], "wb": [b, b, b, b]}
