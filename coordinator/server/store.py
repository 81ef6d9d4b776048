"""SQLite schema, migrations and the small queries everything else builds on.

One connection, used from the event loop only: SQLite calls here take
microseconds (WAL, synchronous=NORMAL), which costs less than a thread hop,
and it makes every read-modify-write atomic without extra locks. Multi-step
changes run inside `Store.tx()` (BEGIN IMMEDIATE).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Each entry upgrades the schema by one version; never edit a shipped entry,
# append a new one.
MIGRATIONS: tuple[str, ...] = (
    # 1: the first schema
    """
    CREATE TABLE jobs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        priority INTEGER NOT NULL DEFAULT 50,
        status TEXT NOT NULL,
        status_reason TEXT NOT NULL DEFAULT '',
        settings TEXT NOT NULL,              -- JSON, validated by the job type
        files TEXT NOT NULL DEFAULT '{}',    -- JSON relpath -> sha256
        blend TEXT,                          -- main .blend, relative to the file tree
        blender_version TEXT,                -- version that saved it, e.g. '4.2'
        min_blender INTEGER NOT NULL DEFAULT 0, -- major*1000+minor a worker needs
        submitter TEXT NOT NULL DEFAULT '',
        deliver INTEGER NOT NULL DEFAULT 1,  -- write outputs into the output folder here
        max_attempts INTEGER NOT NULL DEFAULT 3,
        generation INTEGER NOT NULL DEFAULT 1, -- bumped by regenerate
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL
    );
    CREATE INDEX jobs_status ON jobs(status, priority DESC, id);
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        idx INTEGER NOT NULL,                -- order within the job
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        payload TEXT NOT NULL,               -- JSON
        frames TEXT NOT NULL DEFAULT '[]',   -- JSON list of frames it produces
        priority INTEGER NOT NULL DEFAULT 0,
        status TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        worker_id TEXT,
        lease_expires REAL,
        progress REAL NOT NULL DEFAULT 0,
        activity TEXT NOT NULL DEFAULT '',
        generation INTEGER NOT NULL DEFAULT 1,
        has_deps INTEGER NOT NULL DEFAULT 0,
        updated_at REAL NOT NULL
    );
    CREATE INDEX tasks_runnable ON tasks(job_id, status, priority DESC, idx);
    CREATE INDEX tasks_worker ON tasks(worker_id) WHERE worker_id IS NOT NULL;
    CREATE INDEX tasks_lease ON tasks(lease_expires) WHERE status = 'active';
    CREATE TABLE task_deps (
        task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        depends_on INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        PRIMARY KEY (task_id, depends_on)
    );
    CREATE TABLE task_failures (
        task_id INTEGER NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        worker_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        blamed INTEGER NOT NULL DEFAULT 1,   -- 0: the worker vanished (lease expired)
        at REAL NOT NULL
    );
    CREATE INDEX task_failures_task ON task_failures(task_id, worker_id);
    CREATE INDEX task_failures_job ON task_failures(job_id, worker_id);
    CREATE TABLE workers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        host TEXT NOT NULL DEFAULT '',
        secret_hash TEXT NOT NULL UNIQUE,
        status TEXT NOT NULL,
        blender_version TEXT NOT NULL DEFAULT '',
        blender INTEGER NOT NULL DEFAULT 0,  -- major*1000+minor
        devices TEXT NOT NULL DEFAULT '[]',
        tags TEXT NOT NULL DEFAULT '[]',
        disabled INTEGER NOT NULL DEFAULT 0,
        last_seen REAL NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE outputs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
        task_id INTEGER NOT NULL,
        name TEXT NOT NULL,                  -- file name as Blender wrote it
        frame INTEGER,
        sha256 TEXT NOT NULL,
        size INTEGER NOT NULL,
        delivered_path TEXT,                 -- where it landed on this machine
        delivery_note TEXT NOT NULL DEFAULT '',
        created_at REAL NOT NULL,
        UNIQUE (job_id, name)
    );
    """,
    # 2: outputs that feed other tasks (progressive rendering's chunks and merges)
    """
    -- kept on the farm for the tasks that depend on it, never delivered
    ALTER TABLE outputs ADD COLUMN intermediate INTEGER NOT NULL DEFAULT 0;
    -- the task attempt that uploaded it, NULL once the task started another attempt
    ALTER TABLE outputs ADD COLUMN attempt INTEGER;
    -- sha256 of the file this job last delivered under this name: the job may replace
    -- its own earlier delivery (a sharper progressive frame) even with overwrite off
    ALTER TABLE outputs ADD COLUMN delivered_sha256 TEXT;
    CREATE INDEX outputs_task ON outputs(task_id);
    """,
    # 3: "what does this worker hold" without walking every task it ever finished
    """
    DROP INDEX tasks_worker;
    CREATE INDEX tasks_worker ON tasks(worker_id, status) WHERE worker_id IS NOT NULL;
    """,
    # 4: a job's tasks a page at a time, in their order (GET /jobs/{id}/tasks)
    """
    CREATE INDEX tasks_job_order ON tasks(job_id, generation, idx);
    """,
    # 5: "does the job's current generation have a task in this status" in one index
    # probe: every completion asks it for each status, and with only tasks_job_order
    # to go on an absent status walked the whole job (issue 14). The generation joins
    # the runnable index rather than a new index, which every status change and
    # every submitted task would also have to write.
    """
    DROP INDEX tasks_runnable;
    CREATE INDEX tasks_runnable ON tasks(job_id, status, generation, priority DESC, idx);
    """,
    # 6: where a task's time went, for its latest attempt: the coordinator's clock for
    # the claim and the completion, the worker's own (seconds after it got the task)
    # for the stages between
    """
    ALTER TABLE tasks ADD COLUMN claimed_at REAL;
    ALTER TABLE tasks ADD COLUMN completed_at REAL;
    ALTER TABLE tasks ADD COLUMN blender_ready_s REAL;
    ALTER TABLE tasks ADD COLUMN first_sample_s REAL;
    ALTER TABLE tasks ADD COLUMN last_frame_saved_s REAL;
    ALTER TABLE tasks ADD COLUMN uploaded_s REAL;
    """,
    # 7: where a job came from, as its submitter names it (the add-on: a hash of the
    # farm and the .blend), so "this file's jobs" is one indexed lookup
    """
    ALTER TABLE jobs ADD COLUMN origin TEXT NOT NULL DEFAULT '';
    CREATE INDEX jobs_origin ON jobs(origin, created_at);
    """,
    # 8: interruptions of a task's workers (killed, restarted, lease lost, signed off):
    # they spend no attempt, and a task may see only so many (services/retries.py)
    """
    ALTER TABLE tasks ADD COLUMN interruptions INTEGER NOT NULL DEFAULT 0;
    """,
    # 9: pools and capabilities: what a worker reports it can do (engines, devices,
    # memory, OS), and what a job requires of its workers (tags, an engine, a device);
    # the scheduler matches them among the runnable jobs it already reads
    """
    ALTER TABLE workers ADD COLUMN capabilities TEXT NOT NULL DEFAULT '{}';
    ALTER TABLE jobs ADD COLUMN requires_tags TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE jobs ADD COLUMN needs TEXT NOT NULL DEFAULT '{}';
    """,
    # 10: a worker resting outside its working hours says until when (status 'resting')
    """
    ALTER TABLE workers ADD COLUMN resting_until REAL;
    """,
    # 11: the outputs waiting to be delivered again (a folder that could not be written,
    # a regenerate's new folder): the sweep asks for them every second, and scanned
    # every output the farm ever made to find them (72 ms a sweep at 200,000)
    """
    CREATE INDEX outputs_to_deliver ON outputs(job_id)
        WHERE delivered_path IS NULL AND delivery_note != '';
    """,
)


def _now() -> float:
    return time.time()


def sql_statements(script: str) -> list[str]:
    """The statements of an SQL script, split where SQLite itself sees them end:
    a ";" inside a comment, a string or a trigger body does not split."""
    statements, start = [], 0
    for end, char in enumerate(script):
        if char == ";" and sqlite3.complete_statement(script[start : end + 1]):
            statement = script[start : end + 1].strip()
            if not _only_comments(statement.rstrip(";")):
                statements.append(statement)
            start = end + 1
    if script[start:].strip() and not _only_comments(script[start:]):
        raise ValueError(f"incomplete SQL statement at the end: {script[start:].strip()[:80]!r}")
    return statements


def _only_comments(text: str) -> bool:
    lines = (line.strip() for line in text.splitlines())
    return all(not line or line.startswith("--") for line in lines)


class Store:
    """The coordinator's SQLite file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        if not path.exists():  # private from the start; SQLite gives its -wal/-shm the same mode
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT, 0o600))
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.row_factory = sqlite3.Row
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute("PRAGMA foreign_keys=ON")
        self.db.execute("PRAGMA busy_timeout=5000")
        try:
            self.migrate()
        except BaseException:
            self.db.close()
            raise

    def close(self) -> None:
        self.db.close()

    @property
    def schema_version(self) -> int:
        return int(self.db.execute("PRAGMA user_version").fetchone()[0])

    def migrate(self) -> None:
        """Bring the file up to the newest schema, one transaction per version
        (executescript would commit on its own, so statements run one by one)."""
        current = self.schema_version
        if current > len(MIGRATIONS):
            raise RuntimeError(
                f"{self.path} has schema version {current}, newer than this coordinator"
                f" understands ({len(MIGRATIONS)}); upgrade the coordinator"
            )
        for version in range(current + 1, len(MIGRATIONS) + 1):
            log.info("migrating %s to schema version %d", self.path, version)
            with self.tx():
                for statement in sql_statements(MIGRATIONS[version - 1]):
                    self.db.execute(statement)
                self.db.execute(f"PRAGMA user_version={version}")

    @contextlib.contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One atomic transaction; nested calls join the outer one."""
        if self.db.in_transaction:
            yield self.db
            return
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def one(self, sql: str, *args: Any) -> sqlite3.Row | None:
        row: sqlite3.Row | None = self.db.execute(sql, args).fetchone()
        return row

    def all(self, sql: str, *args: Any) -> list[sqlite3.Row]:
        return self.db.execute(sql, args).fetchall()

    def run(self, sql: str, *args: Any) -> sqlite3.Cursor:
        return self.db.execute(sql, args)


def loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)
