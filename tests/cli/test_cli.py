"""The command line against a real coordinator started with `python -m coordinator serve`.

Most commands run in-process through `main([...])` (fast, captured with
capsys); a few run as real subprocesses to check exit codes and that an
expected error never shows a traceback. Workers are faked from the test
through FarmClient, in a thread, so no Blender is needed.
"""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from zeroconf import ServiceInfo, Zeroconf

from coordinator.cli import common, inspect, submit
from coordinator.cli import main as cli
from coordinator.client import browser as discovery
from coordinator.client.browser import FoundCoordinator
from coordinator.client.http import FarmClient, NotFoundError
from coordinator.core.network import free_port
from coordinator.core.protocol import API_VERSION, SERVICE_TYPE
from coordinator.server import serve as server
from coordinator.server.openapi import openapi_document
from tests.cli.conftest import Result, Run, connect_args, submit_sleep, unique
from tests.cli.fakes import FakeWorker, complete, fail, render_frames
from tests.support.coordinator_process import REPO, CoordinatorProcess, environment
from tests.support.fakeblend import fake_blend_bytes
from tests.support.waiting import wait_for


def run_subprocess(*argv: str) -> Result:
    proc = subprocess.run(
        [sys.executable, "-m", "coordinator", *argv],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)


def fake_blend(path: Path, header: bytes = b"BLENDER-v304") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fake_blend_bytes(header=header))
    return path


# ======================================================= submit, offline
def test_project_files_skip_hidden_caches_and_backups(tmp_path: Path) -> None:
    for rel in (
        "shots/shot.blend",
        "shots/shot.blend1",
        "shots/shot.blend12",
        "tex/wood.png",
        ".git/HEAD",
        "scripts/__pycache__/x.pyc",
        "scripts/rig.py",
        ".DS_Store",
    ):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(rel.encode())
    assert sorted(submit.project_files(tmp_path)) == [
        "scripts/rig.py",
        "shots/shot.blend",
        "tex/wood.png",
    ]


def test_set_needs_key_value(run: Run) -> None:
    result = run("submit", "--type", "sleep", "--set", "task_count")
    assert result.code == 2
    assert "expected KEY=VALUE" in result.err


# ============================================================== submit
@pytest.mark.parametrize("options_after", [False, True])
def test_submit_sleep_prints_the_job_id(
    farm: CoordinatorProcess,
    capsys: pytest.CaptureFixture[str],
    api: FarmClient,
    options_after: bool,
) -> None:
    command = ["submit", "--type", "sleep", "--set", "task_count=3", "--set", "seconds=0"]
    argv = [*command, *connect_args(farm)] if options_after else [*connect_args(farm), *command]
    assert cli.main(argv) == 0
    out, err = capsys.readouterr()
    job_id = int(out.splitlines()[0])
    job = api.job(job_id)
    assert job["type"] == "sleep" and len(job["tasks"]) == 3
    assert job["settings"] == {"task_count": 3, "seconds": 0.0, "uneven": 0.0}
    assert f"job {job_id}" in err and "3 tasks" in err


def test_bad_setting_value_names_the_field(run: Run) -> None:
    result = run("submit", "--type", "sleep", "--set", "task_count=many")
    assert result.code == 2
    assert result.err.startswith("error: ")
    assert "task_count" in result.err and "whole number" in result.err
    result = run("submit", "--type", "sleep", "--set", "colour=red")
    assert result.code == 2 and "colour" in result.err and "task_count" in result.err


def test_unknown_job_type(run: Run) -> None:
    result = run("submit", "--type", "nope")
    assert result.code == 2
    assert "unknown job type 'nope'" in result.err and "sleep" in result.err


def test_render_job_needs_a_blend(run: Run) -> None:
    result = run("submit", "--frames", "1-2", "--output", "/tmp/x/f_####")
    assert result.code == 2 and "needs a .blend" in result.err


def test_wrong_token_is_exit_4_without_traceback(farm: CoordinatorProcess) -> None:
    result = run_subprocess("--coordinator", farm.url, "--token", "wrong", "jobs")
    assert result.code == 4
    assert result.err.startswith("error: wrong farm token")
    assert "Traceback" not in result.err


def test_unreachable_coordinator_is_exit_3(run: Run) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = run("--coordinator", url, "--token", "any-token", "jobs", connect=False)
    assert result.code == 3
    assert "cannot reach the coordinator" in result.err


def test_no_coordinator_on_the_lan(run: Run, monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[dict[str, object]] = []

    def find_none(**kwargs: object) -> list[FoundCoordinator]:
        asked.append(kwargs)
        return []

    monkeypatch.setattr(discovery, "find_coordinators", find_none)
    result = run("--zeroconf-interface", "127.0.0.1", "jobs", connect=False)
    assert result.code == 3
    assert "--coordinator" in result.err and "lanfarm serve" in result.err
    assert asked == [
        {
            "first": True,
            "timeout": common.DISCOVERY_TIMEOUT,
            "settle": common.DISCOVERY_SETTLE,
            "interfaces": ["127.0.0.1"],
            "name": None,
        }
    ]


def test_coordinator_found_on_the_lan(farm: CoordinatorProcess, run: Run) -> None:
    # This farm speaks plain HTTP; announced by zeroconf on 127.0.0.1 it is found,
    # but a farm found on the LAN must prove it knows the token, which needs TLS,
    # so it gets no token (tests/e2e/test_impostor.py has the farm that proves
    # itself and is used).
    port = int(farm.url.rsplit(":", 1)[1])
    name = unique("test farm")
    info = ServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        port=port,
        properties={"api": API_VERSION, "name": name, "port": str(port)},
        server=f"test-farm-{port}.local.",
        addresses=[socket.inet_aton("127.0.0.1")],
    )
    zc = Zeroconf(interfaces=["127.0.0.1"])
    zc.register_service(info)
    try:
        result = run(
            "--zeroconf-interface", "127.0.0.1", "--farm-name", name,
            "--token", farm.token, "job-types", connect=False,
        )  # fmt: skip
    finally:
        zc.unregister_service(info)
        zc.close()
    assert result.code == 4, result.err
    assert "no farm found on the LAN proved that it knows this farm token" in result.err
    assert f"'{name}' at {farm.url} (it speaks plain HTTP" in result.err


def test_job_types_lists_settings(run: Run) -> None:
    result = run("job-types")
    assert result.code == 0
    for word in ("sleep", "task_count", "blender-render", "frames", "(required)", "OPEN_EXR"):
        assert word in result.out
    result = run("job-types", "--json")
    assert {t["name"] for t in json.loads(result.out)} >= {"sleep", "blender-render"}


def test_submit_blend_reads_header_and_uploads_once(
    run: Run, api: FarmClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blend = fake_blend(tmp_path / "shot.blend")
    monkeypatch.chdir(tmp_path)
    argv = ["submit", "shot.blend", "--frames", "1-6", "--chunk-size", "2"]
    result = run(*argv, "--output", "out/frame_####")
    assert result.code == 0, result.err
    assert "uploaded 1 file (0.0 MB), 0 already on the farm" in result.err
    job = api.job(int(result.out.splitlines()[0]))
    assert job["name"] == "shot" and job["blend"] == "shot.blend"
    assert job["blender_version"] == "3.4"
    assert job["settings"]["output"] == str(tmp_path / "out" / "frame_####")
    assert [t["frames"] for t in job["tasks"]] == [[1, 2], [3, 4], [5, 6], []]
    assert job["tasks"][-1]["kind"] == "preview"  # on unless --set preview=false
    assert job["deliver"] is True

    result = run(*argv, str(blend), "--output", "//render/f_", "--no-deliver")
    assert result.code == 2  # two BLEND arguments
    result = run("submit", str(blend), "--frames", "1", "--output", "//render/f_", "--no-deliver")
    assert result.code == 0, result.err
    assert "uploaded 0 files (0.0 MB), 1 already on the farm" in result.err
    job = api.job(int(result.out.splitlines()[0]))
    assert job["settings"]["output"] == str(tmp_path / "render" / "f_")
    assert job["deliver"] is False


def test_blender_version_option_and_unreadable_header(
    run: Run, api: FarmClient, tmp_path: Path
) -> None:
    blend = fake_blend(tmp_path / "zstd.blend", header=b"\x28\xb5\x2f\xfd")
    base = ["submit", str(blend), "--project", str(tmp_path), "--frames", "1"]
    base += ["--output", str(tmp_path / "f_")]  # --project: Blender cannot trace a fake
    result = run(*base)
    assert result.code == 0, result.err
    assert "zstd" in result.err and "--blender-version" in result.err
    assert api.job(int(result.out.splitlines()[0]))["blender_version"] is None
    result = run(*base, "--blender-version", "4.2")
    assert api.job(int(result.out.splitlines()[0]))["blender_version"] == "4.2"
    result = run(*base, "--blender-version", "four")
    assert result.code == 2 and "--blender-version: not a Blender version" in result.err


def test_submit_project_folder(run: Run, api: FarmClient, tmp_path: Path) -> None:
    project = tmp_path / "project"
    blend = fake_blend(project / "shots" / "shot.blend")
    (project / "tex").mkdir()
    (project / "tex" / "wood.png").write_bytes(os.urandom(300))
    (project / "shots" / "shot.blend1").write_bytes(b"backup")
    (project / ".git").mkdir()
    (project / ".git" / "HEAD").write_bytes(b"ref")
    argv = ["submit", str(blend), "--project", str(project), "--frames", "1-2"]
    result = run(*argv, "--output", str(tmp_path / "out" / "f_####"))
    assert result.code == 0, result.err
    assert "uploaded 2 files" in result.err and "0 already on the farm" in result.err
    job = api.job(int(result.out.splitlines()[0]))
    assert job["blend"] == "shots/shot.blend"

    outside = fake_blend(tmp_path / "elsewhere.blend")
    result = run("submit", str(outside), "--project", str(project), "--frames", "1")
    assert result.code == 2 and "not inside the project folder" in result.err


# ================================================================ jobs
def test_jobs_filters_and_json(run: Run) -> None:
    prefix = unique("filt")
    ids = {s: submit_sleep(run, f"{prefix}_{s}") for s in ("a", "b", "c")}
    assert run("cancel", str(ids["b"])).code == 0

    def listed(*filters: str) -> list[str]:
        result = run("jobs", "--name", f"{prefix}_*", "--json", *filters)
        assert result.code == 0, result.err
        return [j["name"] for j in json.loads(result.out)["jobs"]]

    assert sorted(listed()) == [f"{prefix}_a", f"{prefix}_b", f"{prefix}_c"]
    assert listed("--status", "canceled") == [f"{prefix}_b"]
    assert sorted(listed("--status", "queued,canceled")) == sorted(listed())
    assert listed("--type", "blender-render") == []
    assert len(listed("--type", "sleep")) == 3
    assert listed("--sort", "name", "--limit", "2") == [f"{prefix}_a", f"{prefix}_b"]
    assert listed("--sort", "-name", "--offset", "1", "--limit", "1") == [f"{prefix}_b"]

    table = run("jobs", "--name", prefix)
    assert table.code == 0
    assert table.out.splitlines()[0].split() == [
        *("ID", "NAME", "STATUS", "PROGRESS", "ETA", "TASKS", "TYPE", "PRIORITY", "SUBMITTER"),
        "SUBMITTED",
    ]
    row = next(line for line in table.out.splitlines() if f"{prefix}_b" in line)
    assert row.split()[0] == str(ids["b"]) and "canceled" in row and "0/3" in row

    bad = run("jobs", "--status", "bogus")
    assert bad.code == 2 and "unknown status bogus" in bad.err
    assert run("jobs", "--name", unique("nothing")).err.strip() == "no jobs match"


def test_job_details(run: Run) -> None:
    job_id = submit_sleep(run, unique("details"), "--set", "task_count=2")
    result = run("job", str(job_id))
    assert result.code == 0, result.err
    assert "status:     queued" in result.out
    assert "sleep 1/2" in result.out and "sleep 2/2" in result.out
    assert "task_count = 2" in result.out
    detail = json.loads(run("job", str(job_id), "--json").out)
    assert detail["id"] == job_id and len(detail["tasks"]) == 2
    first = run("job", str(job_id), "--limit", "1")  # a big job shows a page of its tasks
    assert "sleep 1/2" in first.out and "sleep 2/2" not in first.out
    assert "the first 1 of 2 tasks; see more with --limit N" in first.err
    none = run("job", str(job_id), "--tasks", "failed")
    assert "sleep 1/2" not in none.out and "no failed tasks" in none.err
    bad = run("job", str(job_id), "--tasks", "broken")
    assert bad.code == 2 and "unknown task status 'broken'" in bad.err
    missing = run("job", "999999")
    assert missing.code == 2 and "there is no job 999999" in missing.err


@pytest.mark.parametrize(
    ("value", "shown"),
    [
        (2.345, "  a frame:    2.3 s to render (median of its tasks; start-up, uploads left out)"),
        (600.0, "  a frame:    10 min to render (median of its tasks; start-up, uploads left out)"),
        (None, None),  # nothing measured yet
        ("2 s", None),  # what a coordinator should never send: left out, no traceback
        (float("nan"), None),
        (True, None),
        (-1.0, None),
    ],
)
def test_job_details_show_the_measured_render_time_a_frame(
    value: object, shown: str | None
) -> None:
    job = {
        "id": 7, "name": "shot", "type": "blender-render", "status": "active",
        "progress": 0.5, "task_counts": {"completed": 1, "queued": 1}, "priority": 50,
        "blend": "shot.blend", "settings": {}, "frame_seconds": value,
    }  # fmt: skip
    lines = [line for line in inspect.job_details(job).splitlines() if "a frame:" in line]
    assert lines == ([] if shown is None else [shown])


def test_job_actions_and_refusals(run: Run, api: FarmClient) -> None:
    job_id = str(submit_sleep(run, unique("actions")))
    running = run("resume", job_id)  # not paused: already so, exit 0 (repeats.py)
    assert running.code == 0 and running.out.endswith(": queued\n")
    assert running.err.strip() == (
        f"job {job_id} is queued, not paused; nothing to resume (already so: nothing to do)"
    )
    assert run("pause", job_id).out.endswith(": paused\n")
    assert run("resume", job_id).out.endswith(": queued\n")
    assert run("requeue", job_id).code == 0  # nothing failed or canceled yet: already so
    assert run("cancel", job_id).out.endswith(": canceled\n")
    assert run("requeue", job_id).out.endswith(": queued\n")
    assert api.job(int(job_id))["task_counts"] == {"queued": 3}
    assert run("requeue", job_id, "--all").code == 0  # every task is queued already
    assert run("cancel", job_id).code == 0
    refused = run("pause", job_id)  # a canceled job cannot be paused: refused
    assert refused.code == 2 and refused.err.startswith(f"error: job {job_id} is canceled")
    assert run("delete", job_id, "--yes").out == f"job {job_id} deleted\n"
    assert run("job", job_id).code == 2


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_delete_asks_on_a_terminal(
    run: Run, api: FarmClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    job_id = submit_sleep(run, unique("ask"))
    monkeypatch.setattr(sys, "stdin", _Terminal("n\n"))
    result = run("delete", str(job_id))
    assert result.code == 1 and "not deleted" in result.err
    assert api.job(job_id)["id"] == job_id
    monkeypatch.setattr(sys, "stdin", _Terminal("y\n"))
    assert run("delete", str(job_id)).code == 0
    with pytest.raises(NotFoundError):
        api.job(job_id)


# ====================================================== --wait and pull
def test_wait_until_a_fake_worker_completes(farm: CoordinatorProcess, run: Run) -> None:
    name = unique("wait-ok")
    worker = FakeWorker(farm, name)
    worker.start(complete, tasks=2)
    result = run(
        *("submit", "--type", "sleep", "--name", name, "--priority", "100"),
        *("--set", "task_count=2", "--set", "seconds=0", "--wait"),
    )
    worker.join()
    assert result.code == 0, result.err
    job_id = int(result.out.strip())  # only the id on stdout, even with --wait
    assert f"job {job_id} completed" in result.err
    assert "2/2 tasks completed" in result.err

    detail = json.loads(run("job", str(job_id), "--json").out)
    task_id = detail["tasks"][0]["id"]
    log = run("log", str(task_id))
    assert log.code == 0 and f"hello from task {task_id}" in log.out
    last = run("log", str(task_id), "--tail", "1").out  # lines, whole
    assert last.splitlines() == log.out.splitlines()[-1:] and last.endswith("\n")
    workers = run("workers")
    assert workers.code == 0 and "fake-" in workers.out and "4.2.0" in workers.out
    assert any(w["name"].startswith("fake-") for w in json.loads(run("workers", "--json").out))


def test_wait_reports_a_failed_job(farm: CoordinatorProcess, run: Run) -> None:
    name = unique("wait-fail")
    worker = FakeWorker(farm, name)
    worker.start(fail, tasks=1)
    result = run(
        *("submit", "--type", "sleep", "--name", name, "--priority", "100"),
        *("--set", "task_count=1", "--max-attempts", "1", "--wait"),
    )
    worker.join()
    assert result.code == 1
    assert "failed: task 'sleep 1/1' failed: boom" in result.err
    assert "render died: out of memory" in result.err
    job_id = result.out.strip()
    assert run("requeue", job_id, "--all").out.endswith(": queued\n")
    assert run("cancel", job_id).out.endswith(": canceled\n")  # keep later fake workers off it


def test_pull_fetches_outputs_once(farm: CoordinatorProcess, run: Run, tmp_path: Path) -> None:
    name = unique("pull")
    frames = {f"frame_000{i}.png": os.urandom(1000 + i) for i in (1, 2)}
    worker = FakeWorker(farm, name)
    worker.start(render_frames(frames, tmp_path / "worker"), tasks=1)
    blend = fake_blend(tmp_path / "pull.blend")
    out = tmp_path / "renders"
    result = run(
        *("submit", str(blend), "--name", name, "--priority", "100", "--no-deliver"),
        *("--frames", "1-2", "--chunk-size", "2", "--output", str(out / "frame_####"), "--wait"),
        *("--set", "preview=false"),  # the fake worker renders one task
    )
    worker.join()
    assert result.code == 0, result.err
    job_id = result.out.strip()
    assert not out.exists()  # --no-deliver: nothing written by the coordinator

    first = run("pull", job_id)
    assert first.code == 0, first.err
    assert first.out.startswith("pulled 2 files")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == frames
    again = run("pull", job_id)
    assert again.out.startswith("pulled 0 files") and "2 already there" in again.out

    (out / "frame_0001.png").write_bytes(b"edited")
    changed = run("pull", job_id)
    assert changed.out.startswith("pulled 1 file ") and "replacing" in changed.err
    assert (out / "frame_0001.png").read_bytes() == frames["frame_0001.png"]
    other = run("pull", job_id, "--into", str(tmp_path / "copy"))
    assert other.out.startswith("pulled 2 files")
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temp files left


def submit_rendered(
    farm: CoordinatorProcess, run: Run, tmp_path: Path, frames: dict[str, bytes], *argv: str
) -> str:
    """A two-frame render job done by a fake worker that uploads `frames`; its id."""
    name = unique("render")
    worker = FakeWorker(farm, name)
    worker.start(render_frames(frames, tmp_path / name), tasks=1)
    blend = fake_blend(tmp_path / f"{name}.blend")
    result = run(
        *("submit", str(blend), "--name", name, "--priority", "100", "--frames", "1-2"),
        *("--chunk-size", "2", "--set", "preview=false", "--wait", *argv),
    )
    worker.join()
    assert result.code == 0, result.err
    return result.out.strip()


def test_pull_of_a_folder_output_lands_where_the_coordinator_delivers(
    farm: CoordinatorProcess, run: Run, api: FarmClient, tmp_path: Path
) -> None:
    """An output of "<dir>/renders/" names the folder itself: the coordinator
    delivers into <dir>/renders, and pull must pick that folder, not <dir>."""
    frames = {f"000{i}.png": os.urandom(900 + i) for i in (1, 2)}
    delivered = tmp_path / "delivered"
    job_id = submit_rendered(farm, run, tmp_path, frames, "--output", f"{delivered}/renders/")
    assert api.job(int(job_id))["settings"]["output"] == f"{delivered}/renders/"
    renders = delivered / "renders"
    wait_for(lambda: renders.is_dir() and len(list(renders.iterdir())) == 2, what="the delivery")
    assert {p.name: p.read_bytes() for p in renders.iterdir()} == frames
    result = run("pull", job_id)
    assert result.code == 0, result.err
    assert result.out == f"pulled 0 files (0.0 MB) into {renders}; 2 already there\n"

    kept = tmp_path / "kept"
    job_id = submit_rendered(
        farm, run, tmp_path, frames, "--output", f"{kept}/renders/", "--no-deliver"
    )
    assert not kept.exists()
    result = run("pull", job_id)
    assert result.code == 0, result.err
    assert result.out.startswith("pulled 2 files") and f"into {kept / 'renders'};" in result.out
    assert [p.name for p in kept.iterdir()] == ["renders"]  # nothing landed in <dir> itself
    assert {p.name: p.read_bytes() for p in (kept / "renders").iterdir()} == frames


def test_pull_follows_a_regenerate_to_the_new_output_folder(
    farm: CoordinatorProcess, run: Run, tmp_path: Path
) -> None:
    """The record of a job submitted from here follows a regenerate's new output
    (as the person gave it), so pull puts the frames where the farm now would."""
    frames = {f"000{i}.png": os.urandom(800 + i) for i in (1, 2)}
    first, moved = tmp_path / "first", tmp_path / "moved"
    job_id = submit_rendered(farm, run, tmp_path, frames, "--output", f"{first}/", "--no-deliver")
    result = run("regenerate", job_id, "--output", f"{moved}/")
    assert result.code == 0, result.err
    result = run("pull", job_id)
    assert result.code == 0, result.err
    assert f"into {moved};" in result.out
    assert {p.name: p.read_bytes() for p in moved.iterdir()} == frames
    assert not first.exists()


def test_pull_needs_an_output_folder(run: Run) -> None:
    job_id = submit_sleep(run, unique("nopull"))  # submitted from here, but with no output
    result = run("pull", str(job_id))
    assert result.code == 2 and f"no output folder recorded for job {job_id}" in result.err
    assert result.err.rstrip().endswith("pass --into DIR")


# ============================================================ the rest
def test_openapi_docs_mentions_every_path(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "docs" / "api.md"
    assert cli.main(["openapi-docs", "--out", str(out)]) == 0
    text = out.read_text()
    doc = openapi_document()
    for path, ops in doc["paths"].items():
        for method in ops:
            assert f"`{method.upper()} {path}`" in text
    for tag in ("jobs", "tasks", "files", "workers", "worker protocol", "meta"):
        assert f"\n## {tag}\n" in text
    assert "### JobSubmission" in text and "| `max_attempts` |" in text
    assert "created\\|updated" in text  # pipes inside cells are escaped
    capsys.readouterr()


def test_local_token_is_the_one_a_default_serve_writes() -> None:
    """A client on the coordinator's machine finds its token without importing the server."""
    assert common.local_token_file() == server.default_data_dir() / "token.txt"


def test_client_commands_never_load_the_server() -> None:
    """`python -m coordinator jobs` starts quickly: no aiohttp, no server, no zeroconf."""
    url = f"http://127.0.0.1:{free_port()}"
    code = (
        "import sys\n"
        "from coordinator.cli.main import main\n"
        f"assert main(['--coordinator', '{url}', 'jobs']) == 3\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('aiohttp', 'zeroconf')"
        " or m.startswith('coordinator.server')))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "[]\n"


def test_module_entry_point_and_help() -> None:
    result = run_subprocess("--help")
    assert result.code == 0
    for command in ("serve", "submit", "jobs", "pull", "openapi-docs"):
        assert command in result.out
    result = run_subprocess("job", "abc")
    assert result.code == 2 and "expected a whole number" in result.err
