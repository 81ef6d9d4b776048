"""The CLI's private record of the jobs it submitted (coordinator/cli/submitted.py):
what pull writes into without --into. Real files in tmp; a real TLS farm for
the farm's identity."""

from __future__ import annotations

import json
import stat
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
