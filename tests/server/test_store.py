"""Schema migrations on real SQLite files."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from coordinator.server import scheduler
from coordinator.server.store import MIGRATIONS, Store, sql_statements


def test_statements_split_where_sqlite_sees_them_end() -> None:
    script = """
    -- a comment; with a semicolon
    CREATE TABLE a (x TEXT DEFAULT 'one; two');  -- trailing; comment
    CREATE TRIGGER t AFTER INSERT ON a BEGIN
        UPDATE a SET x = 'b;c' WHERE rowid = new.rowid;
    END;
    ;
    -- the end
    """
    statements = sql_statements(script)
    assert len(statements) == 2
    assert statements[0].endswith("DEFAULT 'one; two');")
    assert statements[1].startswith("-- trailing; comment\n") and statements[1].endswith("END;")
    with pytest.raises(ValueError, match="incomplete SQL statement at the end: 'CREATE TABLE b"):
        sql_statements("CREATE TABLE a (x);\nCREATE TABLE b (y)")


def test_every_shipped_migration_splits_into_whole_statements() -> None:
    for script in MIGRATIONS:
        statements = sql_statements(script)
        assert statements and all(sqlite3.complete_statement(s) for s in statements)


def test_an_old_file_is_upgraded_in_place_and_keeps_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "farm.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for statement in sql_statements(MIGRATIONS[0]):
        db.execute(statement)
    db.execute("PRAGMA user_version=1")
    db.execute(
        "INSERT INTO jobs (name, type, status, settings, created_at, updated_at)"
        " VALUES ('kept', 'sleep', 'queued', '{}', 0, 0)"
    )
    db.close()
    store = Store(path)
    try:
        assert store.schema_version == len(MIGRATIONS)
        row = store.one("SELECT name FROM jobs")
        assert row is not None and row["name"] == "kept"
    finally:
        store.close()


def test_a_newer_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "farm.sqlite3"
    db = sqlite3.connect(path)
    db.execute(f"PRAGMA user_version={len(MIGRATIONS) + 1}")
    db.close()
    with pytest.raises(RuntimeError, match="newer than this coordinator understands"):
        Store(path)


def test_a_schema_4_farm_keeps_its_tasks_and_their_order_through_schemas_5_and_6(
    tmp_path: Path,
) -> None:
    """The runnable index is rebuilt with the generation in it (5) and tasks gain
    their timings (6): a half-done job goes on where it was."""
    path = tmp_path / "farm.sqlite3"
    db = sqlite3.connect(path, isolation_level=None)
    for script in MIGRATIONS[:4]:
        for statement in sql_statements(script):
            db.execute(statement)
    db.execute("PRAGMA user_version=4")
    db.execute(
        "INSERT INTO jobs (name, type, status, settings, created_at, updated_at)"
        " VALUES ('old', 'sleep', 'active', '{}', 0, 0)"
    )
    for idx, status in enumerate(("completed", "queued", "queued")):
        db.execute(
            "INSERT INTO tasks (job_id, idx, name, kind, payload, status, updated_at)"
            " VALUES (1, ?, ?, 'sleep', '{}', ?, 0)",
            (idx, f"t{idx}", status),
        )
    db.close()
    store = Store(path)
    try:
        assert store.schema_version == len(MIGRATIONS) >= 6
        columns = [r["name"] for r in store.all("PRAGMA index_info(tasks_runnable)")]
        assert columns == ["job_id", "status", "generation", "priority", "idx"]
        claimed = scheduler.claim(store, worker_id="w", blender=4002, lease_seconds=60)
        assert claimed is not None
        sql = "SELECT idx, claimed_at, completed_at FROM tasks WHERE id = ?"
        row = store.one(sql, claimed.task_id)
        assert row is not None and row["idx"] == 1 and row["claimed_at"] > 0
        assert row["completed_at"] is None
        done = store.one("SELECT claimed_at FROM tasks WHERE idx = 0")
        assert done is not None and done["claimed_at"] is None  # not known, not made up
    finally:
        store.close()
