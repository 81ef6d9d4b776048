"""The agent's loop in this process, against a real coordinator app, with a fake Blender.

The coordinator is the real aiohttp app on a real SQLite file, served on
127.0.0.1 from a thread. The fake Blender is a small executable that replays
what Debian's Blender 3.4.1 really printed for a two-frame task
(tests/support/data/runner_blender-3.4.1_frames.txt), moved into the task's
output folder, and writes each frame it announces: the agent parses real
events, uploads real files and reports to a real farm, in a second or two.
"""

from __future__ import annotations

import hashlib
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from unittest import mock

import pytest

from coordinator.client.http import FarmClient
from tests.conftest import TOKEN
from tests.support.waiting import wait_for
from tests.worker_agent.conftest import LiveFarm
from worker_agent import cli
from worker_agent.agent import Agent, AgentConfig
from worker_agent.credentials import FILE_NAME
from worker_agent.probe import BlenderInfo

CAPTURE = (
    Path(__file__).resolve().parents[1] / "support" / "data" / "runner_blender-3.4.1_frames.txt"
)

# The stand-in for Blender. It answers the version probe like Blender 3.4.1 and
# the device probe with nothing (so: CPU only); given a task (on its command line,
# or on stdin as serve.py takes them), it replays CAPTURE.
FAKE_BLENDER = """#!{python}
import json, os, sys, time

CAPTURE = {capture!r}
CRASH_AFTER = {crash_after!r}  # progress events before it crashes (exit 139); None: never
PAUSE = {pause!r}  # seconds after each progress event, so the agent has time to report it
ONCE = {once!r}  # a file: crash (CRASH_AFTER) only while it does not exist, then create it
HANG = {hang!r}  # instead of crashing, stop printing (and answering) for good
MARK = "@@FARM@@ "


def frame_bytes(frame):
    return ("not really a PNG: frame %d" % frame).encode()


def crash():
    if HANG:
        time.sleep(3600)
    report = os.path.join(os.environ.get("TMPDIR", "/tmp"), "fake.crash.txt")
    with open(report, "w") as f:
        f.write("# Blender 3.4.1, Commit date: 2022-12-19\\nSegmentation fault in ccl::Film\\n")
    print("Writing: " + report, flush=True)
    return 139


def replay(task):
    captured = None  # the output folder of the captured run, replaced by the task's
    progress = 0
    for line in open(CAPTURE, encoding="utf-8").read().splitlines():
        event = json.loads(line[len(MARK):]) if line.startswith(MARK) else {{}}
        if event.get("event") == "ready":
            captured = os.path.dirname(event["output"])
        if captured:
            line = line.replace(captured, task["output_dir"])
        if event.get("frame", task["frames"][0]) not in task["frames"]:
            continue  # a one-frame task replays only its own frame's lines
        if event.get("event") == "done":
            line = MARK + json.dumps({{"event": "done", "frames": task["frames"]}})
        if event.get("event") == "frame_saved":
            with open(json.loads(line[len(MARK):])["path"], "wb") as f:
                f.write(frame_bytes(event["frame"]))
        print(line, flush=True)
        if event.get("event") == "progress":
            progress += 1
            if CRASH_AFTER is not None and progress >= CRASH_AFTER:
                if ONCE is None:
                    return crash()
                if not os.path.exists(ONCE):
                    open(ONCE, "w").close()
                    return crash()
            time.sleep(PAUSE)
    return 0


def serve():
    # serve.py loop: a task line in, its events out, until end of input
    print("Read blend: " + sys.argv[sys.argv.index("-Y") + 1], flush=True)
    for line in iter(sys.stdin.readline, ""):
        request = json.loads(line)
        print(MARK + json.dumps({{"event": "accepted", "task": request["task"]}}), flush=True)
        with open(request["task"], encoding="utf-8") as f:
            code = replay(json.load(f))
        if code:
            return code
    print("Blender quit", flush=True)
    return 0


if "--version" in sys.argv:
    print("Blender 3.4.1")
    sys.exit(0)
if "--python-expr" in sys.argv:
    sys.exit(0)
if sys.argv[-1] == "--serve":
    sys.exit(serve())
with open(sys.argv[-1], encoding="utf-8") as f:
    sys.exit(replay(json.load(f)))
"""


def frame_sha(frame: int) -> str:
    """The sha256 of what the fake writes for frame."""
    return hashlib.sha256(f"not really a PNG: frame {frame}".encode()).hexdigest()


def fake_blender(
    folder: Path,
    *,
    crash_after: int | None = None,
    pause: float = 0.0,
    once: bool = False,
    hang: bool = False,
) -> Path:
    """The fake Blender's executable; once: it crashes (or hangs) on its first task only."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "blender"
    flag = str(folder / "crashed-once") if once else None
    path.write_text(
        FAKE_BLENDER.format(
            python=sys.executable,
            capture=str(CAPTURE),
            crash_after=crash_after,
            pause=pause,
            once=flag,
            hang=hang,
        ),
        encoding="utf-8",
    )
    path.chmod(0o755)
    return path


def config(farm: LiveFarm, blender: Path, **options: Any) -> AgentConfig:
    """An agent of this farm rendering with blender, quick to poll and to report."""
    info = BlenderInfo(version="3.4.1", version_tuple=(3, 4, 1), path=str(blender), kind="binary")
    settings: dict[str, Any] = {
        "coordinator": farm.url,
        "token": TOKEN,
        "name": "replay",
        "blender": info,
        "cache_dir": farm.root / "cache",
        "poll_wait": 0.5,
        "retry_seconds": 0.1,
        "report_seconds": 0.05,
    }
    return AgentConfig(**{**settings, **options})


def submit_render(farm: LiveFarm, **job: Any) -> tuple[int, Path]:
    """A two-frame job as one task, like the captured run; -> (job id, output folder)."""
    blend = farm.root / "project" / "shot.blend"
    blend.parent.mkdir(exist_ok=True)
    blend.write_bytes(b"BLENDER-v304 (the fake Blender never reads it)")
    files, _ = farm.client.upload_project({"shot.blend": blend})
    out = farm.root / "Ausgabe"
    body = {
        "name": "replay",
        "type": "blender-render",
        "blend": "shot.blend",
        "files": files,
        "settings": {
            "frames": "1-2",
            "chunk_size": 2,
            "output": str(out / "frame_####"),
            "file_format": "PNG",
            "preview": False,  # the fake Blender makes no movie; the subject is the render task
        },
        **job,
    }
    return int(farm.client.submit(body)["id"]), out


def submit_sleep(farm: LiveFarm, count: int = 1) -> int:
    job = farm.client.submit(
        {"name": "nap", "type": "sleep", "settings": {"task_count": count, "seconds": 0}}
    )
    return int(job["id"])


def run(agent: Agent, timeout: float = 60.0) -> int:
    """agent.run(), which must end by itself (burst, max_tasks) within timeout."""
    result: list[int] = []
    thread = threading.Thread(target=lambda: result.append(agent.run()), name="agent")
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        agent.shutdown(now=True)
        thread.join(30)
        raise AssertionError(f"the agent was still serving after {timeout:g} s")
    return result[0]


# ---------------------------------------------------------------- the loop


def test_burst_renders_the_queued_job_and_leaves(farm: LiveFarm) -> None:
    job_id, out = submit_render(farm)
    agent = Agent(config(farm, fake_blender(farm.root / "bin", pause=0.3), burst=True))
    real_update = FarmClient.update_task
    with mock.patch.object(
        FarmClient, "update_task", autospec=True, side_effect=real_update
    ) as update:
        assert run(agent) == 0

    job = farm.client.job(job_id)
    assert job["status"] == "completed", job
    assert agent.tasks_done == 1
    outputs = sorted((o["name"], o["frame"], o["sha256"]) for o in farm.client.outputs(job_id))
    assert outputs == [
        ("frame_0001.png", 1, frame_sha(1)),
        ("frame_0002.png", 2, frame_sha(2)),
    ]
    wait_for(lambda: len(list(out.glob("frame_*.png"))) == 2, 10, "the frames delivered")
    for frame in (1, 2):
        delivered = out / f"frame_{frame:04d}.png"
        assert hashlib.sha256(delivered.read_bytes()).hexdigest() == frame_sha(frame)

    reports = [c.kwargs for c in update.call_args_list]
    assert any(0 < (r["progress"] or 0) < 1 for r in reports), reports
    activities = [r["activity"] for r in reports if r["activity"]]
    assert "frame 1: sample 4/4" in activities, activities
    task_id = farm.client.tasks(job_id)["tasks"][0]["id"]
    log = farm.client.task_log(task_id)
    assert "Szene_Übung_日本, ViewLayer | Sample 4/4" in log  # Blender's own lines
    assert "[agent] uploaded frame_0002.png" in log
    assert "@@FARM@@" not in log  # events are read, not logged

    (worker,) = farm.client.workers()
    assert worker["status"] == "offline"  # a burst worker signs off when it leaves


def test_blender_crashing_mid_frame_fails_the_task_and_the_agent_goes_on(
    farm: LiveFarm,
) -> None:
    render_id, _ = submit_render(farm, max_attempts=1)
    sleep_id = submit_sleep(farm)
    agent = Agent(config(farm, fake_blender(farm.root / "bin", crash_after=1), burst=True))
    assert run(agent) == 0

    render = farm.client.job(render_id)
    assert render["status"] == "failed", render
    (listed,) = farm.client.tasks(render_id)["tasks"]
    task = farm.client.task(listed["id"])
    assert task["status"] == "failed"
    (failure,) = task["failures"]
    reason = failure["reason"]
    assert reason.startswith(
        "Blender crashed (killed by SIGSEGV, exit code 139); frames 1, 2 were not written:"
    ), reason
    assert "Writing: " in reason  # Blender's last words: where its crash report went
    log = farm.client.task_log(task["id"])
    assert "[blender crash] Segmentation fault in ccl::Film" in log
    assert farm.client.job(sleep_id)["status"] == "completed"
    assert agent.tasks_done == 2


def test_max_tasks_stops_after_that_many(farm: LiveFarm) -> None:
    job_id = submit_sleep(farm, count=3)
    agent = Agent(config(farm, fake_blender(farm.root / "bin"), max_tasks=2))
    assert run(agent) == 0
    counts = farm.client.job(job_id)["task_counts"]
    assert counts.get("completed") == 2 and counts.get("queued") == 1, counts


def test_a_second_run_comes_back_as_the_same_worker_without_the_token(farm: LiveFarm) -> None:
    blender = fake_blender(farm.root / "bin")
    assert run(Agent(config(farm, blender, burst=True))) == 0
    creds = farm.root / "cache" / FILE_NAME
    assert creds.stat().st_mode & 0o777 == 0o600
    assert run(Agent(config(farm, blender, burst=True, token=None))) == 0
    assert [w["name"] for w in farm.client.workers()] == ["replay"]


# ---------------------------------------------------------------- the command line


@pytest.fixture
def signal_handlers() -> Iterator[None]:
    """cli.main installs its own SIGINT/SIGTERM handlers; put pytest's back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in saved.items():
            signal.signal(signum, handler)


@pytest.mark.usefixtures("signal_handlers")
def test_cli_burst_works_the_queue_then_exits_0(farm: LiveFarm) -> None:
    job_id = submit_sleep(farm, count=2)
    argv = [
        "--coordinator", farm.url, "--token", TOKEN, "--name", "cli",
        "--blender", str(fake_blender(farm.root / "bin")),
        "--cache-dir", str(farm.root / "cache"), "--poll-wait", "0.5", "--burst",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    assert farm.client.job(job_id)["status"] == "completed"
    (worker,) = farm.client.workers()
    assert (worker["name"], worker["status"], worker["blender_version"]) == (
        "cli",
        "offline",
        "3.4.1",
    )


@pytest.mark.usefixtures("signal_handlers")
def test_cli_burst_on_an_empty_farm_exits_0_after_one_poll(farm: LiveFarm) -> None:
    argv = [
        "--coordinator", farm.url, "--token", TOKEN,
        "--blender", str(fake_blender(farm.root / "bin")),
        "--cache-dir", str(farm.root / "cache"), "--poll-wait", "0.2", "--burst",
    ]  # fmt: skip
    assert cli.main(argv) == 0
    assert [w["status"] for w in farm.client.workers()] == ["offline"]
