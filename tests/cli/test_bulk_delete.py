"""`delete` by filter: every job matching the `jobs` filters, shown first (how
many and which), then agreed to with --yes (a script has no terminal to ask);
no filter at all is refused. Run as real processes against a real
coordinator, except the paging test, which shrinks the page in process."""

from __future__ import annotations

import json

import pytest

from coordinator.cli import control
from coordinator.client.http import FarmClient, NotFoundError
from tests.cli.conftest import Run, connect_args, run_process, unique
from tests.support.coordinator_process import CoordinatorProcess


def sleep_job(
    api: FarmClient, name: str, *, submitter: str = "ana@desk-3", priority: int = 50
) -> int:
    body = {"name": name, "type": "sleep", "settings": {"task_count": 1, "seconds": 0}}
    job_id: int = api.submit({**body, "submitter": submitter, "priority": priority})["id"]
    return job_id


def exists(api: FarmClient, job_id: int) -> bool:
    try:
        api.job(job_id, tasks=False)
    except NotFoundError:
        return False
    return True


def delete(farm: CoordinatorProcess, *argv: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = run_process(*connect_args(farm), "delete", *argv, stdin=stdin)
    return result.code, result.out, result.err


@pytest.mark.parametrize("stdin", [None, "y\n"], ids=["devnull", "echo-y"])
def test_without_a_terminal_refused_and_nothing_deleted(
    farm: CoordinatorProcess, api: FarmClient, stdin: str | None
) -> None:
    prefix = unique("bulk-refused")
    ids = [sleep_job(api, f"{prefix}_{n}") for n in range(3)]
    code, out, err = delete(farm, "--name", f"{prefix}_*", stdin=stdin)
    assert code == 2, err
    assert out == ""
    assert f"3 jobs match: {', '.join(map(str, ids))}\n" in err
    assert err.endswith(
        "error: refusing to delete 3 jobs without a terminal to ask for a yes;"
        " pass --yes to delete 3 jobs without asking\n"
    )
    assert all(exists(api, job_id) for job_id in ids)


def test_yes_deletes_only_the_matching_jobs(farm: CoordinatorProcess, api: FarmClient) -> None:
    prefix = unique("bulk")
    queued = sleep_job(api, f"{prefix}_queued")
    failed_like = [sleep_job(api, f"{prefix}_gone_{n}") for n in range(3)]
    for job_id in failed_like:
        api.cancel_job(job_id)
    other_name = sleep_job(api, unique("elsewhere"))  # canceled, but another name
    api.cancel_job(other_name)
    other_submitter = sleep_job(api, f"{prefix}_bob", submitter="bob@desk-9")
    api.cancel_job(other_submitter)

    code, out, err = delete(
        farm,
        *("--status", "failed,canceled", "--name", f"{prefix}_*", "--submitter", "ana*"),
        *("--yes", "--json"),
    )
    assert code == 0, err
    assert json.loads(out) == {"deleted": failed_like, "skipped": []}
    assert f"3 jobs match: {', '.join(map(str, failed_like))}" in err
    assert not any(exists(api, job_id) for job_id in failed_like)
    assert all(exists(api, job_id) for job_id in (queued, other_name, other_submitter))

    code, out, err = delete(farm, "--status", "canceled", "--name", f"{prefix}_*", "--yes")
    assert (code, out) == (0, "1 job deleted\n"), err  # the table-less text answer
    assert not exists(api, other_submitter) and exists(api, queued)


def test_preview_shows_twenty_ids_and_how_many_more(
    farm: CoordinatorProcess, api: FarmClient
) -> None:
    prefix = unique("bulk-many")
    ids = [sleep_job(api, f"{prefix}_{n:02}") for n in range(23)]
    code, out, err = delete(farm, "--name", prefix)
    assert code == 2 and out == ""
    assert err.splitlines()[0] == (f"23 jobs match: {', '.join(map(str, ids[:20]))} and 3 more")
    assert all(exists(api, job_id) for job_id in ids)


def test_no_filter_refused(farm: CoordinatorProcess, api: FarmClient) -> None:
    job_id = sleep_job(api, unique("bulk-kept"))
    for argv in ((), ("--yes",), ("--yes", "--json")):
        code, out, err = delete(farm, *argv)
        assert (code, out) == (2, ""), err
        assert err.startswith("error: give a job ID or at least one filter")
        assert "to delete everything say --status ... explicitly" in err
    nobody = run_process("delete", "--yes", env={"FARM_COORDINATOR": "http://127.0.0.1:9"})
    assert nobody.code == 2 and "at least one filter" in nobody.err  # before any connection
    code, _, err = delete(farm, str(job_id), "--status", "queued", "--yes")
    assert code == 2 and "give a job ID or filters, not both" in err
    assert exists(api, job_id)


def test_nothing_matches(farm: CoordinatorProcess) -> None:
    code, out, err = delete(farm, "--name", unique("bulk-none"), "--yes", "--json")
    assert (code, json.loads(out)) == (0, {"deleted": [], "skipped": []}), err
    assert "no jobs match; nothing deleted" in err


def test_more_than_one_page(run: Run, api: FarmClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(control, "BULK_PAGE", 2)
    prefix = unique("bulk-pages")
    ids = [sleep_job(api, f"{prefix}_{n}") for n in range(5)]
    kept = sleep_job(api, unique("bulk-page-kept"))
    result = run("delete", "--name", f"{prefix}_*", "--yes", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out) == {"deleted": ids, "skipped": []}
    assert not any(exists(api, job_id) for job_id in ids) and exists(api, kept)


def test_running_job_is_deleted_like_a_single_delete(
    farm: CoordinatorProcess, api: FarmClient
) -> None:
    """The API deletes a job in any status (its running tasks stop), so a bulk
    delete does too; it skips only what the coordinator refuses."""
    prefix = unique("bulk-active")
    creds = api.register_worker(name=prefix, host="test", blender_version="4.2.0", devices=["CPU"])
    worker = FarmClient(api.url, token=creds.secret)
    try:
        job_id = sleep_job(api, f"{prefix}_job", priority=100)  # before the others queued here
        assert worker.next_task(wait=5) is not None
        assert api.job(job_id, tasks=False)["status"] == "active"
        code, out, err = delete(farm, "--status", "active", "--name", f"{prefix}_*", "--yes")
        assert (code, out) == (0, "1 job deleted\n"), err
        assert not exists(api, job_id)
    finally:
        worker.sign_off()
        worker.session.close()


def test_a_job_gone_meanwhile_is_skipped_with_exit_1(
    run: Run, api: FarmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another person deletes a job between the listing and its turn: the
    coordinator answers 404, the job is reported as skipped, the exit code is 1."""
    prefix = unique("bulk-race")
    ids = [sleep_job(api, f"{prefix}_{n}") for n in range(3)]
    listed = control.matching_jobs

    def listed_then_one_deleted(client: FarmClient, filters: dict[str, str]) -> list[int]:
        found = listed(client, filters)
        api.delete_job(ids[1])
        return found

    monkeypatch.setattr(control, "matching_jobs", listed_then_one_deleted)
    result = run("delete", "--name", f"{prefix}_*", "--yes", "--json")
    assert result.code == 1, result.err
    assert json.loads(result.out) == {
        "deleted": [ids[0], ids[2]],
        "skipped": [{"id": ids[1], "reason": "already gone"}],
    }
    assert f"job {ids[1]} not deleted: already gone" in result.err
