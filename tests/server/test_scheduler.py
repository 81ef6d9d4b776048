"""The scheduler on a real SQLite file: order, atomic claims, and a claim
that reads the first runnable task instead of scanning a huge job."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from coordinator.server import scheduler
from coordinator.server.farm import Farm
from coordinator.server.services.jobs import NewJob
from coordinator.server.services.workers import NewWorker
from coordinator.server.store import Store

BLENDER_4_2 = 4002


def sleep_job(farm: Farm, count: int, **extra: Any) -> int:
    job = farm.jobs.submit(
        NewJob(
            name=f"sleep x{count}", type="sleep", settings={"task_count": count}, files={}, **extra
        )
    )
    return int(job["id"])


def task_ids(farm: Farm, job_id: int) -> list[int]:
    return [
        r["id"]
        for r in farm.ctx.store.all("SELECT id FROM tasks WHERE job_id = ? ORDER BY idx", job_id)
    ]


def claim(store: Store, worker: str = "w", blender: int = BLENDER_4_2) -> scheduler.Claimed | None:
    return scheduler.claim(store, worker_id=worker, blender=blender, lease_seconds=60)


def test_claims_of_a_10000_task_job_come_in_order_and_never_twice(
    make_farm: Callable[..., Farm],
) -> None:
    farm = make_farm()
    job_id = sleep_job(farm, 10_000)
    expected = task_ids(farm, job_id)
    got = []
    for i in range(10_000):
        claimed = claim(farm.ctx.store, f"worker-{i % 7}")
        assert claimed is not None, f"claim {i} found nothing"
        assert claimed.job_id == job_id
        got.append(claimed.task_id)
    assert got == expected
    assert len(set(got)) == 10_000
    assert claim(farm.ctx.store) is None
    rows = farm.ctx.store.all(
        "SELECT status, attempts, count(*) AS n FROM tasks GROUP BY status, attempts"
    )
    assert [tuple(r) for r in rows] == [("active", 1, 10_000)]
    job = farm.ctx.store.one("SELECT status FROM jobs WHERE id = ?", job_id)
    assert job is not None and job["status"] == "active"


def test_two_connections_racing_never_share_a_task(make_farm: Callable[..., Farm]) -> None:
    """Two stores on one file, claiming from two threads as fast as they can."""
    farm = make_farm()
    job_id = sleep_job(farm, 2_000)
    other = Store(farm.ctx.store.path)
    results: dict[str, list[int]] = {"a": [], "b": []}
    errors: list[BaseException] = []

    start = threading.Barrier(2)

    def hammer(store: Store, name: str) -> None:
        try:
            start.wait(10)
            while (claimed := claim(store, name)) is not None:
                results[name].append(claimed.task_id)
                # A breath between claims, as a coordinator has between requests:
                # SQLite's busy handler sleeps, so a connection re-taking the lock
                # at once could starve the other and the race would not happen.
                time.sleep(0.0002)
        except BaseException as ex:  # reported by the main thread
            errors.append(ex)

    threads = [
        threading.Thread(target=hammer, args=(farm.ctx.store, "a")),
        threading.Thread(target=hammer, args=(other, "b")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    other.close()
    assert not errors, errors
    a, b = results["a"], results["b"]
    assert not set(a) & set(b)
    assert sorted(a + b) == task_ids(farm, job_id)
    assert a == sorted(a) and b == sorted(b)  # each saw the queue in order
    assert a and b, "one thread never got a turn; the race was not exercised"


def test_a_claim_on_a_100000_task_job_reads_only_the_front(
    make_farm: Callable[..., Farm],
) -> None:
    """Counted in SQLite VM steps rather than seconds, so it is not flaky: the
    first claim costs the same on a job of 100,000 tasks as on one of 10."""

    def first_claim_steps(farm: Farm, count: int) -> tuple[int, scheduler.Claimed | None]:
        job_id = sleep_job(farm, count)
        steps = 0

        def count_step() -> int:
            nonlocal steps
            steps += 1
            return 0  # go on

        farm.ctx.store.db.set_progress_handler(count_step, 1)
        try:
            claimed = claim(farm.ctx.store)
        finally:
            farm.ctx.store.db.set_progress_handler(None, 1)
        assert claimed is not None
        assert claimed.task_id == task_ids(farm, job_id)[0]
        return steps, claimed

    small, _ = first_claim_steps(make_farm("small"), 10)
    huge, claimed = first_claim_steps(make_farm("huge"), 100_000)
    assert claimed is not None
    assert huge <= small * 1.5 + 50, f"{huge} VM steps on a huge job vs {small} on a small one"


def test_the_task_query_uses_the_runnable_index(tmp_path: Path) -> None:
    store = Store(tmp_path / "plan.sqlite3")
    try:
        plan = [
            r["detail"]
            for r in store.db.execute(
                "EXPLAIN QUERY PLAN " + scheduler._TASK, {"job": 1, "generation": 1, "worker": "w"}
            ).fetchall()
        ]
    finally:
        store.close()
    assert any("USING INDEX tasks_runnable" in line for line in plan), plan
    assert not any("TEMP B-TREE" in line for line in plan), plan  # no sort of the whole job
    assert not any(line.startswith("SCAN t") for line in plan), plan


def test_priority_then_age_across_jobs(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm()
    low = sleep_job(farm, 1, priority=10)
    high_old = sleep_job(farm, 1, priority=80)
    high_new = sleep_job(farm, 1, priority=80)
    order = []
    while (claimed := claim(farm.ctx.store)) is not None:
        order.append(claimed.job_id)
    assert order == [high_old, high_new, low]


def test_paused_failed_and_canceled_jobs_hand_out_nothing(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm()
    for status in ("paused", "failed", "canceled", "completed"):
        job_id = sleep_job(farm, 1)
        farm.ctx.store.run("UPDATE jobs SET status = ? WHERE id = ?", status, job_id)
    assert claim(farm.ctx.store) is None


def test_blender_version_filter(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm()
    job_id = sleep_job(farm, 1, blender_version="5.0")
    assert claim(farm.ctx.store, "old", blender=3004) is None
    assert claim(farm.ctx.store, "older", blender=4999) is None
    claimed = claim(farm.ctx.store, "new", blender=5000)
    assert claimed is not None and claimed.job_id == job_id


def test_a_worker_is_not_given_a_task_it_failed(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm()
    job_id = sleep_job(farm, 2)
    first, second = task_ids(farm, job_id)
    farm.ctx.store.run(
        "INSERT INTO task_failures (task_id, job_id, worker_id, reason, at) VALUES (?, ?, ?, ?, ?)",
        first,
        job_id,
        "w",
        "crashed",
        time.time(),
    )
    claimed = claim(farm.ctx.store, "w")
    assert claimed is not None and claimed.task_id == second
    claimed = claim(farm.ctx.store, "other")
    assert claimed is not None and claimed.task_id == first


def test_a_worker_that_keeps_failing_a_job_gets_no_more_of_it(
    make_farm: Callable[..., Farm],
) -> None:
    farm = make_farm()
    bad_job = sleep_job(farm, 10, priority=90)
    other_job = sleep_job(farm, 1, priority=10)
    for task_id in task_ids(farm, bad_job)[: scheduler.BLOCKLIST_THRESHOLD]:
        farm.ctx.store.run(
            "INSERT INTO task_failures (task_id, job_id, worker_id, reason, at)"
            " VALUES (?, ?, ?, ?, ?)",
            task_id,
            bad_job,
            "flaky",
            "crashed",
            time.time(),
        )
    claimed = claim(farm.ctx.store, "flaky")
    assert claimed is not None and claimed.job_id == other_job
    claimed = claim(farm.ctx.store, "healthy")
    assert claimed is not None and claimed.job_id == bad_job


def test_expired_leases(make_farm: Callable[..., Farm]) -> None:
    farm = make_farm()
    sleep_job(farm, 3)
    a = claim(farm.ctx.store, "a")
    b = scheduler.claim(farm.ctx.store, worker_id="b", blender=BLENDER_4_2, lease_seconds=0.0)
    assert a is not None and b is not None
    now = time.time() + 1
    assert scheduler.expired_leases(farm.ctx.store, now) == [(b.task_id, "b")]
    assert sorted(scheduler.expired_leases(farm.ctx.store, now + 3600)) == sorted(
        [(a.task_id, "a"), (b.task_id, "b")]
    )


def test_complete_then_claim_is_one_transaction(
    make_farm: Callable[..., Farm], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chained completion (what agents send) commits once; a claim that fails
    leaves the completion undone, and the worker's retry completes it then."""
    farm = make_farm()
    job_id = sleep_job(farm, 3)
    secret = farm.workers.register(NewWorker(name="w", blender_version="4.2.0"))["secret"]
    worker = farm.workers.authenticate(secret)
    first = farm.tasks.claim(worker)
    assert first is not None
    commits: list[str] = []
    farm.ctx.store.db.set_trace_callback(
        lambda sql: commits.append(sql) if sql.strip().upper() == "COMMIT" else None
    )
    second = farm.tasks.complete_then_claim(worker, first.task_id)
    farm.ctx.store.db.set_trace_callback(None)
    assert second is not None and second.task_id != first.task_id
    assert len(commits) == 1  # completion and claim together
    assert farm.ctx.task_row(first.task_id)["status"] == "completed"

    def broken(*_args: Any, **_kwargs: Any) -> None:
        raise RuntimeError("the claim broke")

    monkeypatch.setattr(farm.tasks, "claim", broken)
    with pytest.raises(RuntimeError):
        farm.tasks.complete_then_claim(worker, second.task_id)
    assert farm.ctx.task_row(second.task_id)["status"] == "active"  # undone with the claim
    assert not farm.ctx.store.db.in_transaction
    monkeypatch.undo()
    third = farm.tasks.complete_then_claim(worker, second.task_id)  # the worker's retry
    assert farm.ctx.task_row(second.task_id)["status"] == "completed"
    assert third is not None and third.task_id not in (first.task_id, second.task_id)
    assert [r["status"] for r in farm.ctx.store.all(
        "SELECT status FROM tasks WHERE job_id = ? ORDER BY idx", job_id
    )] == ["completed", "completed", "active"]  # fmt: skip
