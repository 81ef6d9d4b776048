"""The query plans of the claim/complete path, on a real SQLite file holding
a realistic farm (a 20,000-task job among others, some tasks done or failed,
a regenerated job, 20,000 outputs).

Every statement the worker protocol runs is caught with SQLite's trace hook
while a worker claims, reports, renews, completes with next, fails and is
swept, and while one renders: uploads its frames (each delivered into the
output folder) and completes, and the sweep delivers a frame again; and
`EXPLAIN QUERY PLAN` of each must be the one written below: each
names the index that bounds it, so its cost does not grow with the job. An
index added later that the planner prefers, or a new query on the path,
fails here until someone looks at its plan and writes it down.

(Issue 14: a completion's job-status probe walked the whole job through
`tasks_job_order` for every status it did not find: 6 ms a task at 10,000.
The sweep's search for outputs to deliver again scanned every output the farm
had kept: 6 ms a second at 20,000, 72 ms at 200,000; now the partial index
outputs_to_deliver holds only those.)
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from coordinator.server.config import FarmConfig
from coordinator.server.errors import BadRequest, Conflict
from coordinator.server.farm import Farm
from coordinator.server.filestore import FileStore
from coordinator.server.hub import Hub
from coordinator.server.services.deliveries import redeliver
from coordinator.server.services.jobs import NewJob
from coordinator.server.services.tasks import TaskReport
from coordinator.server.services.workers import NewWorker
from coordinator.server.store import Store
from tests.conftest import (
    API,
    TOKEN,
    claim,
    farm_of,
    register,
    sha,
    submit_render,
    submit_sleep,
)

BIG_JOB = 20_000

# The statuses probe asks for each task status in turn.
_STATUS_PROBE = [
    "SCAN CONSTANT ROW",
    *["SEARCH tasks USING COVERING INDEX tasks_runnable (job_id=? AND status=? AND generation=?)"]
    * 5,
]
_BY_TASK_ID = ["SEARCH tasks USING INTEGER PRIMARY KEY (rowid=?)"]
_BY_JOB_ID = ["SEARCH jobs USING INTEGER PRIMARY KEY (rowid=?)"]
_BY_WORKER_ID = ["SEARCH workers USING INDEX sqlite_autoindex_workers_1 (id=?)"]
_HELD = ["SEARCH tasks USING INDEX tasks_worker (worker_id=? AND status=?)"]
_BY_OUTPUT_NAME = ["SEARCH outputs USING INDEX sqlite_autoindex_outputs_1 (job_id=? AND name=?)"]
_BY_OUTPUT_ID = ["SEARCH outputs USING INTEGER PRIMARY KEY (rowid=?)"]


@dataclass(frozen=True)
class Expected:
    what: str  # for people
    sql: str  # a regex matching the start of the statement, whitespace collapsed
    plan: list[str]  # EXPLAIN QUERY PLAN's detail column, subquery lines left out


EXPECTED = [
    # ---- the worker authenticates each request
    Expected(
        "the worker by its secret",
        r"SELECT \* FROM workers WHERE secret_hash =",
        ["SEARCH workers USING INDEX sqlite_autoindex_workers_2 (secret_hash=?)"],
    ),
    Expected("its last_seen", r"UPDATE workers SET last_seen =", _BY_WORKER_ID),
    Expected(
        "an offline worker: does it hold a task",
        r"SELECT 1 FROM tasks WHERE worker_id = \S+ AND status = 'active'",
        ["SEARCH tasks USING COVERING INDEX tasks_worker (worker_id=? AND status=?)"],
    ),
    # ---- claim
    Expected(
        "what the asking worker still holds",
        r"SELECT id, progress, activity FROM tasks WHERE worker_id =",
        _HELD,
    ),
    Expected(
        # (with what each requires of its workers, matched in Python: the plan is unchanged)
        "the jobs it may take work from, best first (few: jobs, not tasks)",
        r"SELECT id, priority, generation, requires_tags, needs FROM jobs"
        r" WHERE status IN \('queued', 'active'\)",
        [
            "SEARCH jobs USING INDEX jobs_status (status=?)",
            "SEARCH f USING INDEX task_failures_job (job_id=? AND worker_id=?)",
            "USE TEMP B-TREE FOR ORDER BY",
        ],
    ),
    Expected(
        "the job's first runnable task: the index's order, so it stops at the first",
        r"SELECT id, priority FROM tasks t WHERE t.job_id = \S+ AND t.status = 'queued'",
        [
            "SEARCH t USING INDEX tasks_runnable (job_id=? AND status=? AND generation=?)",
            "SEARCH d USING COVERING INDEX sqlite_autoindex_task_deps_1 (task_id=?)",
            "SEARCH dt USING INTEGER PRIMARY KEY (rowid=?)",
            "SEARCH f USING INDEX task_failures_task (task_id=? AND worker_id=?)",
        ],
    ),
    Expected("the lease", r"UPDATE tasks SET status = 'active', worker_id =", _BY_TASK_ID),
    Expected(
        "its job becomes active",
        r"UPDATE jobs SET status = 'active', updated_at = \S+ WHERE id = \(SELECT",
        _BY_JOB_ID + _BY_TASK_ID,
    ),
    Expected("a worker's status", r"SELECT status FROM workers WHERE id =", _BY_WORKER_ID),
    Expected("a worker's new status", r"UPDATE workers SET status = \S+ WHERE id =", _BY_WORKER_ID),
    Expected("a task", r"SELECT \* FROM tasks WHERE id =", _BY_TASK_ID),
    Expected("a job", r"SELECT \* FROM jobs WHERE id =", _BY_JOB_ID),
    Expected("its generation", r"SELECT generation FROM jobs WHERE id =", _BY_JOB_ID),
    Expected(
        "a retry voids what earlier attempts uploaded",
        r"UPDATE outputs SET attempt = NULL WHERE task_id =",
        ["SEARCH outputs USING INDEX outputs_task (task_id=?)"],
    ),
    # ---- reports, renewals, the control poll
    Expected("a report", r"UPDATE tasks SET lease_expires = \S+, updated_at =", _BY_TASK_ID),
    Expected("a renewal", r"UPDATE tasks SET lease_expires = \S+ WHERE id =", _BY_TASK_ID),
    Expected(
        "should it stop",
        r"SELECT status, worker_id, job_id, generation FROM tasks WHERE id =",
        _BY_TASK_ID,
    ),
    Expected(
        "is its job canceled",
        r"SELECT status FROM jobs WHERE id = \(SELECT job_id FROM tasks",
        _BY_JOB_ID + _BY_TASK_ID,
    ),
    # ---- complete (with next), fail
    Expected("a task's new status", r"UPDATE tasks SET status = \S+, updated_at =", _BY_TASK_ID),
    Expected("a completion", r"UPDATE tasks SET progress = 1, activity = 'done'", _BY_TASK_ID),
    Expected("which statuses the job's tasks have", r"SELECT EXISTS \(SELECT 1", _STATUS_PROBE),
    Expected(
        "the task it holds, for a completion's next",
        r"SELECT \* FROM tasks WHERE worker_id = \S+ AND status = 'active' ORDER BY id",
        _HELD,
    ),
    Expected(
        "a failure",
        r"INSERT INTO task_failures",
        [],
    ),
    Expected(
        "is any worker left to try it (workers, not tasks)",
        r"SELECT count\(\*\) FROM workers w WHERE",
        [
            "SCAN w",
            "SEARCH f USING INDEX task_failures_task (task_id=? AND worker_id=?)",
            "SEARCH f USING INDEX task_failures_job (job_id=? AND worker_id=?)",
        ],
    ),
    Expected(
        "a task taken back",
        r"UPDATE tasks SET worker_id = NULL, lease_expires = NULL",
        _BY_TASK_ID,
    ),
    Expected("an interruption counted", r"UPDATE tasks SET interruptions =", _BY_TASK_ID),
    Expected(
        "why the job failed",
        r"SELECT t.name, f.reason FROM tasks t LEFT JOIN task_failures f",
        [
            "SEARCH t USING INDEX tasks_runnable (job_id=? AND status=? AND generation=?)",
            "SEARCH f USING INDEX task_failures_task (task_id=?) LEFT-JOIN",
            "USE TEMP B-TREE FOR ORDER BY",
        ],
    ),
    Expected("a job's new status", r"UPDATE jobs SET status = \S+, status_reason =", _BY_JOB_ID),
    # ---- a render task's outputs: the upload, its copy into the output folder
    Expected(
        "who made this file already (one file name, one producer)",
        r"SELECT t.id, t.name, t.status, t.generation, o.attempt FROM outputs o JOIN tasks t",
        [
            _BY_OUTPUT_NAME[0].replace("outputs", "o", 1),
            "SEARCH t USING INTEGER PRIMARY KEY (rowid=?)",
        ],
    ),
    Expected(
        # EXPLAIN QUERY PLAN shows nothing for an INSERT: the row it replaces is found
        # through its conflict target, which SQLite accepts only when a UNIQUE index
        # covers it (UNIQUE (job_id, name): test_an_upload_finds_the_output_it_replaces_by_index)
        "an upload recorded, or the earlier one of that name replaced",
        r"INSERT INTO outputs \(job_id, task_id, name, .*\) ON CONFLICT \(job_id, name\)",
        [],
    ),
    Expected(
        "an output by name",
        r"SELECT \* FROM outputs WHERE job_id = \S+ AND name =",
        _BY_OUTPUT_NAME,
    ),
    Expected("an output", r"SELECT \* FROM outputs WHERE id =", _BY_OUTPUT_ID),
    Expected("where its job delivers now", r"SELECT settings FROM jobs WHERE id =", _BY_JOB_ID),
    Expected("where it was delivered", r"UPDATE outputs SET delivered_path = ", _BY_OUTPUT_ID),
    Expected(
        "a completion: did each file the task makes arrive, from this attempt",
        r"SELECT name FROM outputs WHERE task_id = \S+ AND attempt =",
        ["SEARCH outputs USING INDEX outputs_task (task_id=?)"],
    ),
    # ---- the sweep
    Expected(
        "the outputs waiting to be delivered again (the index's few rows, not every output)",
        r"SELECT o.job_id, o.name FROM outputs o JOIN jobs j ON j.id = o.job_id",
        [
            "SCAN o USING INDEX outputs_to_deliver",
            "SEARCH j USING INTEGER PRIMARY KEY (rowid=?)",
        ],
    ),
    Expected(
        "expired leases",
        r"SELECT id, worker_id FROM tasks WHERE status = 'active' AND lease_expires <",
        ["SEARCH tasks USING INDEX tasks_lease (lease_expires<?)"],
    ),
    Expected(
        "silent workers (workers, not tasks)",
        r"SELECT id FROM workers WHERE status != 'offline' AND last_seen <",
        ["SCAN workers"],
    ),
]


def _plan(farm: Farm, sql: str) -> list[str]:
    rows = farm.ctx.store.all("EXPLAIN QUERY PLAN " + sql)
    return [r["detail"] for r in rows if not r["detail"].startswith(("CORRELATED ", "SCALAR "))]


@pytest.fixture(scope="module")
def traced(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Farm, list[str]]]:
    """A realistic farm, and every statement one worker's round of the protocol ran
    (built once: the 20,000-task job takes a while)."""
    data_dir = tmp_path_factory.mktemp("plans")
    store = Store(data_dir / "farm.sqlite3")
    config = FarmConfig(data_dir=data_dir, name="plans", token=TOKEN, lease_seconds=60.0)
    farm = Farm(config, store, FileStore(data_dir, max_upload=1 << 20), Hub())
    try:
        yield farm, _exercise(farm)
    finally:
        store.close()


def _submit(farm: Farm, count: int, **extra: Any) -> int:
    job = farm.jobs.submit(
        NewJob(name=f"x{count}", type="sleep", settings={"task_count": count}, files={}, **extra)
    )
    return int(job["id"])


def _exercise(farm: Farm) -> list[str]:
    tasks, workers = farm.tasks, farm.workers
    # Earlier work: a finished job, a regenerated one, a failure on record.
    done = _submit(farm, 200)
    _submit(farm, 300)
    regenerated = _submit(farm, 500)
    farm.regenerator.regenerate(regenerated, settings={"task_count": 400})
    big = _submit(farm, BIG_JOB, priority=60)
    secrets = [workers.register(NewWorker(name=f"w{n}", blender_version="4.2")) for n in range(3)]
    w0, w1, w2 = (workers.authenticate(s["secret"]) for s in secrets)
    farm.ctx.store.run("UPDATE jobs SET priority = 90 WHERE id = ?", done)
    for _ in range(200):
        assignment = tasks.claim(w0)
        assert assignment is not None and assignment.job_id == done
        tasks.complete(w0, assignment.task_id)
    for _ in range(50):
        assignment = tasks.claim(w1)
        assert assignment is not None and assignment.job_id == big
        tasks.complete(w1, assignment.task_id)
    farm.ctx.store.run(
        "UPDATE workers SET status = 'offline', last_seen = 0 WHERE id = ?", w2["id"]
    )

    statements: list[str] = []
    farm.ctx.store.db.set_trace_callback(statements.append)
    try:
        worker = workers.authenticate(secrets[2]["secret"])  # back from offline
        tasks.abandon_held(worker)
        first = tasks.claim(worker, warm_job=regenerated)  # a lower job: not taken
        assert first is not None and first.job_id == big
        # what it will most likely get next (its files fetched ahead): the same plans
        assert tasks.upcoming(worker, warm_job=big) == {"job_id": big}
        assert tasks.upcoming(worker)["job_id"] == big
        tasks.update(
            worker,
            first.task_id,
            TaskReport(progress=0.5, activity="rendering", stages={"blender_ready": 0.4}),
        )
        tasks.renew_lease(worker, first.task_id)
        assert tasks.should_stop(worker, first.task_id) is None
        tasks.complete(worker, first.task_id)
        second = tasks.held_assignment(worker) or tasks.claim(worker)
        assert second is not None
        tasks.fail(worker, second.task_id, reason="out of memory")
        third = tasks.claim(worker, warm_job=big)
        assert third is not None
        farm.sweeps.sweep(now=time.time() + 3600)  # its lease expired: taken back
        with pytest.raises(Conflict):  # and its worker hears so
            tasks.update(worker, third.task_id, TaskReport(progress=0.9))
        farm.ctx.store.db.set_trace_callback(None)
        farm.ctx.store.run("UPDATE jobs SET max_attempts = 1 WHERE id = ?", big)
        farm.ctx.store.db.set_trace_callback(statements.append)
        fourth = tasks.claim(worker)
        assert fourth is not None
        assert tasks.fail(worker, fourth.task_id, reason="out of memory") == "failed"
        farm.ctx.store.db.set_trace_callback(None)
        _render_round(farm, worker, big, statements)
    finally:
        farm.ctx.store.db.set_trace_callback(None)
    return statements


def _render_round(farm: Farm, worker: Any, big: int, statements: list[str]) -> None:
    """A render task's own statements: its frame uploaded (the owner check, the
    upsert, the lease pushed on, the copy into the output folder, uploaded again)
    and its completion's check that every file it makes arrived, among 20,000
    earlier outputs."""
    store = farm.ctx.store
    store.run(
        "INSERT INTO outputs (job_id, task_id, name, frame, sha256, size, created_at, attempt)"
        " SELECT job_id, id, 'big_' || idx || '.png', idx, ?, 1, 0, attempts FROM tasks"
        " WHERE job_id = ?",
        sha(b"old"),
        big,
    )
    blend = b"BLENDER-v304 not really a blend"
    asyncio.run(farm.files.put_blob(sha(blend), _chunks(blend)))
    out_dir = farm.config.data_dir / "renders"
    job = farm.jobs.submit(
        NewJob(
            name="shot",
            type="blender-render",
            settings={
                "frames": "1-2",
                "chunk_size": 2,
                "output": f"{out_dir}/f_####",
                "file_format": "PNG",
            },
            files={"shot.blend": sha(blend)},
            blend="shot.blend",
            priority=95,
            deliver=True,
        )
    )
    store.db.set_trace_callback(statements.append)
    task = farm.tasks.claim(worker)
    assert task is not None and task.job_id == job["id"]
    for pixels in (b"frame one", b"frame one again"):
        out = asyncio.run(
            farm.deliveries.put_output(
                worker, task.task_id, "f_0001.png", frame=1, sha=None, chunks=_chunks(pixels)
            )
        )
        assert out["delivered_path"] == str(out_dir / "f_0001.png"), out["delivery_note"]
    assert (out_dir / "f_0001.png").read_bytes() == b"frame one again"
    with pytest.raises(BadRequest, match=r"f_0002\.png has not been uploaded"):
        farm.tasks.complete(worker, task.task_id)
    asyncio.run(
        farm.deliveries.put_output(
            worker, task.task_id, "f_0002.png", frame=2, sha=None, chunks=_chunks(b"two")
        )
    )
    farm.tasks.complete(worker, task.task_id)
    # a regenerate moved its output folder: the sweep's retry delivers the frame again
    store.db.set_trace_callback(None)
    redeliver(store, job["id"], {1})
    (out_dir / "f_0001.png").unlink()
    store.db.set_trace_callback(statements.append)
    assert asyncio.run(farm.deliveries.retry()) == 1
    store.db.set_trace_callback(None)
    assert (out_dir / "f_0001.png").read_bytes() == b"frame one again"
    assert farm.tasks.get(task.task_id)["status"] == "completed"


async def _chunks(data: bytes) -> AsyncIterator[bytes]:
    yield data


def _dml(statements: list[str]) -> list[str]:
    seen = dict.fromkeys(
        " ".join(s.split())
        for s in statements
        if re.match(r"\s*(SELECT|UPDATE|INSERT|DELETE)\b", s, re.IGNORECASE)
    )
    return list(seen)


def test_every_statement_of_the_worker_protocol_has_its_written_plan(
    traced: tuple[Farm, list[str]],
) -> None:
    farm, statements = traced
    unknown, wrong = [], []
    for sql in _dml(statements):
        matches = [e for e in EXPECTED if re.match(e.sql, sql)]
        if not matches:
            unknown.append(f"{sql[:160]}\n    plan: {_plan(farm, sql)}")
            continue
        expected = matches[0]
        got = _plan(farm, sql)
        if got != expected.plan:
            wrong.append(
                f"{expected.what}: {sql[:120]}\n    wanted {expected.plan}\n    got    {got}"
            )
    assert not unknown, "statements with no written plan (add them to EXPECTED):\n" + "\n".join(
        unknown
    )
    assert not wrong, "plans that changed:\n" + "\n".join(wrong)


def test_every_written_plan_was_seen(traced: tuple[Farm, list[str]]) -> None:
    """An entry no statement matches any more would guard nothing."""
    _, statements = traced
    sqls = _dml(statements)
    unused = [e.what for e in EXPECTED if not any(re.match(e.sql, s) for s in sqls)]
    assert not unused


def test_no_statement_on_the_path_scans_the_tasks(traced: tuple[Farm, list[str]]) -> None:
    farm, statements = traced
    for sql in _dml(statements):
        for line in _plan(farm, sql):
            assert not re.match(r"SCAN (tasks|t|dt|task_failures|f)\b", line), (sql, line)
            # outputs: only the partial index of those waiting to be delivered again
            assert not re.match(r"SCAN (outputs|o)\b(?! USING INDEX outputs_to_deliver$)", line), (
                sql,
                line,
            )


def test_an_upload_finds_the_output_it_replaces_by_index(traced: tuple[Farm, list[str]]) -> None:
    """The upsert's row to replace is looked up through its conflict target's
    UNIQUE index (EXPLAIN QUERY PLAN says nothing for an INSERT): that index is
    (job_id, name), so the lookup does not grow with the outputs kept."""
    farm, statements = traced
    upserts = [s for s in _dml(statements) if s.startswith("INSERT INTO outputs")]
    assert upserts and all("ON CONFLICT (job_id, name)" in s for s in upserts)
    store = farm.ctx.store
    unique = [
        [c["name"] for c in store.all(f"PRAGMA index_info({i['name']})")]
        for i in store.all("PRAGMA index_list(outputs)")
        if i["unique"]
    ]
    assert ["job_id", "name"] in unique


async def test_the_http_worker_protocol_runs_only_written_plans(
    client: TestClient[Any, Any], tmp_path: Path
) -> None:
    """The same through the real app: its middlewares and handlers (the long-poll,
    the control poll, complete with next, a frame's upload) and its sweeper running
    beside them add no statement of their own unseen."""
    worker = await register(client)
    job = await submit_sleep(client, count=3)
    db = farm_of(client).ctx.store.db
    statements: list[str] = []
    db.set_trace_callback(statements.append)
    try:
        task = await claim(client, worker)
        assert task is not None
        task_id = task["task_id"]
        resp = await client.get(f"{API}/worker/upcoming?warm_job={job['id']}", headers=worker)
        assert await resp.json() == {"job_id": job["id"]}
        body = {"progress": 0.5, "log": "Fra:1\n", "stages": {"blender_ready": 0.3}}
        resp = await client.post(f"{API}/worker/tasks/{task_id}/update", json=body, headers=worker)
        assert resp.status == 200
        resp = await client.get(f"{API}/worker/tasks/{task_id}/control?wait=0", headers=worker)
        assert (await resp.json())["action"] == "continue"
        resp = await client.post(
            f"{API}/worker/tasks/{task_id}/complete",
            json={"next": True, "warm_job": job["id"]},
            headers=worker,
        )
        task_id = (await resp.json())["next"]["task_id"]
        resp = await client.post(
            f"{API}/worker/tasks/{task_id}/fail", json={"reason": "broke"}, headers=worker
        )
        assert resp.status == 200
        # a render task: its frame uploaded (owner check, upsert, lease, delivery), done
        db.set_trace_callback(None)
        render = await submit_render(
            client, f"{tmp_path}/out/f_####", frames="1", file_format="PNG"
        )
        farm_of(client).ctx.store.run("UPDATE jobs SET priority = 90 WHERE id = ?", render["id"])
        db.set_trace_callback(statements.append)
        task = await claim(client, worker)
        assert task is not None and task["job_id"] == render["id"]
        task_id = task["task_id"]
        resp = await client.put(
            f"{API}/worker/tasks/{task_id}/outputs/f_0001.png?frame=1&sha256={sha(b'px')}",
            data=b"px",
            headers=worker,
        )
        assert resp.status == 201, await resp.text()
        resp = await client.post(f"{API}/worker/tasks/{task_id}/complete", headers=worker)
        assert resp.status == 200, await resp.text()
    finally:
        db.set_trace_callback(None)
    assert (tmp_path / "out" / "f_0001.png").read_bytes() == b"px"
    traced = _dml(statements)
    for start in ("INSERT INTO outputs", "SELECT t.id, t.name", "SELECT name FROM outputs"):
        assert any(sql.startswith(start) for sql in traced), start
    for sql in _dml(statements):
        matches = [e for e in EXPECTED if re.match(e.sql, sql)]
        assert matches, f"no written plan for {sql[:160]}"
        assert _plan(farm_of(client), sql) == matches[0].plan, sql
