"""The CLI's private record of the jobs it submitted (coordinator/cli/submitted.py):
what pull writes into without --into. Real files in tmp; a real TLS farm for
the farm's identity."""

from __future__ import annotations

import json
import multiprocessing
import os
import stat
import time
from pathlib import Path

import pytest

from coordinator.cli import submitted
from coordinator.client.http import FarmClient
from tests.support.tls_farm import tls_farm

FARM = "http://127.0.0.1:8765"


@pytest.fixture
def record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path / "data" / "blender-farm" / "cli" / "submitted-jobs.json"


def test_a_job_is_recalled_by_farm_and_id_privately(record: Path) -> None:
    assert submitted.record_path() == record
    assert submitted.recall(FARM, 1) is None  # no record yet: nothing, no error
    assert submitted.remember(FARM, 1, "/renders/a") is None
    submitted.remember("sha256:AB:CD", 1, "/renders/other-farm")
    submitted.remember(FARM, 2, "/renders/b")
    submitted.remember(FARM, 1, "/renders/a-again")  # the same job again: replaced
    found = submitted.recall(FARM, 1)
    assert found is not None and found.folder == "/renders/a-again"
    assert submitted.recall("sha256:AB:CD", 1).folder == "/renders/other-farm"  # type: ignore[union-attr]
    assert submitted.recall(FARM, 3) is None
    assert stat.S_IMODE(record.stat().st_mode) == 0o600
    assert stat.S_IMODE(record.parent.stat().st_mode) == 0o700
    assert [p.name for p in record.parent.iterdir()] == [record.name]  # no temp file left
    assert len(json.loads(record.read_text())["jobs"]) == 3


def test_the_record_keeps_the_newest_jobs_only(
    record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submitted, "MAX_JOBS", 5)
    for job_id in range(1, 13):
        submitted.remember(FARM, job_id, f"/renders/{job_id}")
    kept = [j["job"] for j in json.loads(record.read_text())["jobs"]]
    assert kept == [8, 9, 10, 11, 12]
    assert submitted.recall(FARM, 7) is None and submitted.recall(FARM, 12) is not None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ('{"format": 1, "jobs": [', "JSONDecodeError"),
        ("[]", "AttributeError"),
        ('{"format": 7, "jobs": []}', "format 7, expected 1"),
        ('{"format": 1, "jobs": [{"farm": "x", "job": "1", "folder": "/r", "at": 0}]}', "an entry"),
        ('{"format": 1, "jobs": [{"farm": "x"}]}', "KeyError"),
        ("\xff\xfe", "JSONDecodeError"),
    ],
)
def test_a_damaged_record_says_where_and_why_and_is_set_aside_by_the_next_submit(
    record: Path, text: str, why: str
) -> None:
    record.parent.mkdir(parents=True)
    record.write_bytes(text.encode("latin-1"))
    with pytest.raises(submitted.RecordError) as raised:
        submitted.recall(FARM, 1)
    assert f"the record of submitted jobs {record} is damaged" in str(raised.value)
    assert why in str(raised.value)
    note = submitted.remember(FARM, 1, "/renders/a")
    assert note is not None and "moved to" in note and why in note
    assert record.with_name(record.name + ".damaged").read_bytes() == text.encode("latin-1")
    assert submitted.recall(FARM, 1).folder == "/renders/a"  # type: ignore[union-attr]


def test_an_oversized_record_is_not_read(record: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(submitted, "MAX_BYTES", 100)
    record.parent.mkdir(parents=True)
    record.write_text(json.dumps({"format": 1, "jobs": [], "pad": "x" * 200}))
    with pytest.raises(submitted.RecordError, match="larger than"):
        submitted.recall(FARM, 1)


def test_a_tls_farm_is_known_by_its_certificate_at_any_address(tmp_path: Path) -> None:
    with tls_farm(tmp_path) as farm:
        port = farm.url.rsplit(":", 1)[1]
        one = FarmClient(farm.url, token=farm.token)
        other = FarmClient(f"https://localhost:{port}", token=farm.token)
        try:
            fingerprint = one.health()["fingerprint"]
            assert submitted.farm_identity(one) == f"sha256:{fingerprint}"
            assert submitted.farm_identity(other) == f"sha256:{fingerprint}"
        finally:
            one.session.close()
            other.session.close()
    plain = FarmClient("http://127.0.0.1:8765/", token="x")
    assert submitted.farm_identity(plain) == "http://127.0.0.1:8765"


def test_a_record_is_written_well_under_the_read_limit_oldest_dropped(
    record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Entries with File Output text (~1.7 KB each) must not grow the record past
    what _read takes: the oldest go, the record stays readable."""
    monkeypatch.setattr(submitted, "MAX_BYTES", 40_000)
    monkeypatch.setattr(submitted, "WRITE_BYTES", 20_000)
    file_outputs = "x" * 1700
    for job_id in range(1, 61):
        assert submitted.remember(FARM, job_id, f"/r/{job_id}", file_outputs=file_outputs) is None
        assert record.stat().st_size <= 20_000
    kept = [j["job"] for j in json.loads(record.read_text())["jobs"]]
    assert 5 < len(kept) < 60 and kept == list(range(61 - len(kept), 61))
    assert submitted.recall(FARM, 60).file_outputs == file_outputs  # type: ignore[union-attr]
    assert submitted.recall(FARM, 1) is None
    with pytest.raises(OSError, match="over 20000 bytes"):
        submitted.remember(FARM, 61, "/r/61", file_outputs="y" * 30_000)
    assert submitted.recall(FARM, 60) is not None  # the record is as it was


def test_the_default_limits_keep_2000_jobs_with_file_outputs_readable(record: Path) -> None:
    jobs = [submitted.Submitted(FARM, i, f"/r/{i}", 0.0, "x" * 1700) for i in range(3000)]
    submitted._write(record, jobs)
    assert record.stat().st_size <= submitted.WRITE_BYTES < submitted.MAX_BYTES
    assert submitted.recall(FARM, 2999) is not None and submitted.recall(FARM, 0) is None


def _remember_many(data: str, writer: int) -> None:
    os.environ["XDG_DATA_HOME"] = data
    for n in range(20):
        assert submitted.remember(FARM, writer * 100 + n, f"/r/{writer}/{n}") is None


def test_writers_at_once_lose_no_entry(record: Path) -> None:
    """8 processes × 20 submits at once: all 160 jobs are in the record."""
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else "spawn")
    data = str(record.parents[2])
    with context.Pool(8) as pool:
        pool.starmap(_remember_many, [(data, w) for w in range(8)])
    jobs = {j["job"] for j in json.loads(record.read_text())["jobs"]}
    assert jobs == {w * 100 + n for w in range(8) for n in range(20)}
    assert [p.name for p in record.parent.iterdir()] == [record.name]  # lock file gone


def test_a_held_lock_is_waited_for_then_named_and_a_stale_one_broken(
    record: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(submitted, "LOCK_WAIT", 0.3)
    record.parent.mkdir(parents=True)
    lock = record.with_name(record.name + ".lock")
    lock.write_text("12345")  # a live submit's lock (fresh)
    started = time.monotonic()
    with pytest.raises(submitted.RecordBusyError, match="delete that file"):
        submitted.remember(FARM, 1, "/r/1")
    assert 0.3 <= time.monotonic() - started < 5
    assert not record.exists() and lock.exists()
    old = time.time() - submitted.LOCK_STALE - 5  # left by a process that died
    os.utime(lock, (old, old))
    assert submitted.remember(FARM, 1, "/r/1") is None
    assert submitted.recall(FARM, 1) is not None and not lock.exists()
