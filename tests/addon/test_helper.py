"""The add-on's helper process, for real: requests over its stdin, answers read from
its stdout without blocking, as Blender's main thread reads them (runtime.STATE).
No Blender needed: the helper is plain Python with the add-on's package.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from flamenco_addon.background import MsgCancelled, MsgDone, MsgError, MsgProgress
from flamenco_addon.packing import new_pack_folder, remove_stale_packs
from flamenco_addon.pipe import JSON
from flamenco_addon.runtime import Runtime
from tests.addon.test_farm import submission
from tests.support.localfarm import LocalFarm

pytestmark = pytest.mark.timeout(90)


def ask(state: Runtime, kind: str, args: JSON) -> JSON:
    answer: list[JSON] = []
    state.request(kind, args, answer.append)
    state.wait(lambda: bool(answer))
    return answer[0]


def test_reading_never_blocks_while_the_helper_works(state: Runtime, farm: LocalFarm) -> None:
    state.request("jobs", {"url": farm.url, "token": farm.token}, lambda _m: None)
    slowest = 0.0
    deadline = time.monotonic() + 20
    while state.replies and time.monotonic() < deadline:
        start = time.monotonic()
        state.pump(budget=0.005)
        slowest = max(slowest, time.monotonic() - start)
        time.sleep(0.01)
    assert not state.replies, "no answer"
    assert slowest < 0.05  # a timer tick on Blender's main thread stays short


def test_errors_come_back_in_the_artists_words(state: Runtime, farm: LocalFarm) -> None:
    ok = ask(state, "jobs", {"url": farm.url, "token": farm.token})
    assert ok["ok"] == {"jobs": [], "origin": "", "running": 0}
    wrong = ask(state, "jobs", {"url": farm.url, "token": "nope"})
    assert "refused the farm token" in wrong["error"]
    gone = ask(state, "job_types", {"url": "http://127.0.0.1:9", "token": ""})
    assert gone["error"].startswith("Can't reach the farm coordinator at http://127.0.0.1:9")


def test_a_submit_reports_progress_and_a_second_one_uploads_nothing(
    state: Runtime, farm: LocalFarm, tmp_path: Path
) -> None:
    sub = submission(farm, tmp_path, os.urandom(200_000))
    seen: list[MsgProgress] = []
    run = state.start_submit(sub.to_json(), sub.pack_root)
    state.progress[run.rid] = seen.append
    state.wait(lambda: run.final is not None)
    assert isinstance(run.final, MsgDone), run.final
    assert run.final.result["_uploaded_bytes"] >= 200_000
    assert seen[0].stage == "prepare" and seen[-1].stage == "submit"
    assert not sub.pack_root.exists()  # the helper removes the copy when done

    sub.pack_root.mkdir()
    (sub.pack_root / "shot.blend").write_bytes(b"BLENDER-v304 fake")
    again = state.start_submit(sub.to_json(), sub.pack_root)
    state.wait(lambda: again.final is not None)
    assert isinstance(again.final, MsgDone)
    assert "nothing new to upload" in again.final.text


def test_cancel_reaches_a_running_submit(state: Runtime, farm: LocalFarm, tmp_path: Path) -> None:
    sub = submission(farm, tmp_path, b"x")
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    payload = {**sub.to_json(), "rewrite_command": slow}
    run = state.start_submit(payload, sub.pack_root)
    time.sleep(1.0)
    state.cancel_submit()
    state.wait(lambda: run.final is not None)
    assert isinstance(run.final, MsgCancelled)
    assert farm.client().jobs()["total"] == 0


def test_a_cancel_sent_with_the_submit_is_not_lost(
    state: Runtime, farm: LocalFarm, tmp_path: Path
) -> None:
    # The helper reads the cancel line right after the submit line, before the
    # submit's thread has run: the switch must exist already.
    sub = submission(farm, tmp_path, b"x")
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    run = state.start_submit({**sub.to_json(), "rewrite_command": slow}, sub.pack_root)
    state.cancel_submit()
    assert run.cancelling and run.text == "Cancelling..."
    started = time.monotonic()
    state.wait(lambda: run.final is not None)
    assert isinstance(run.final, MsgCancelled), run.final
    assert time.monotonic() - started < 10  # not after the 30 s copy
    assert run.text == "Cancelling..."  # progress after Esc does not overwrite it
    assert farm.client().jobs()["total"] == 0


def test_a_dead_helper_ends_what_was_asked_and_a_new_one_starts(
    state: Runtime, farm: LocalFarm, tmp_path: Path
) -> None:
    sub = submission(farm, tmp_path, b"x")
    slow = [sys.executable, "-c", "import time; time.sleep(30)"]
    run = state.start_submit({**sub.to_json(), "rewrite_command": slow}, sub.pack_root)
    helper = state.helper
    assert helper is not None and helper._proc is not None
    time.sleep(0.5)
    helper._proc.kill()
    helper._proc.wait()
    assert "ok" in ask(state, "jobs", {"url": farm.url, "token": farm.token})  # a new helper
    assert isinstance(run.final, MsgError) and "helper process stopped" in run.final.text


def test_stale_pack_folders_of_gone_processes_are_removed(tmp_path: Path) -> None:
    mine = new_pack_folder(tmp_path)
    old = tmp_path / "farm-pack-abc123"  # before folders carried their pid
    dead = tmp_path / "farm-pack-999999999-x"
    for folder in (old, dead):
        folder.mkdir()
        (folder / "shot.blend").write_bytes(b"copy")
    assert sorted(remove_stale_packs(tmp_path)) == sorted([old, dead])
    assert mine.exists()


def test_no_stale_rows_once_the_farm_is_gone(state: Runtime, farm: LocalFarm) -> None:
    """After Stop Farm the list says the farm can't be reached; it does not keep
    showing the last rows ("active 25%") as if they were still true."""
    job = farm.client().submit({"name": "naps", "type": "sleep", "settings": {"seconds": 60}})

    def poll() -> None:
        state.poll_jobs(time.monotonic())
        state.wait(lambda: not state.jobs_rid)

    state.want_jobs(farm.url, farm.token, {})
    poll()
    assert [j["id"] for j in state.jobs.jobs] == [job["id"]]
    assert state.jobs.running == 1  # what Stop Farm asks about
    farm.stop()
    state.refresh_jobs()
    poll()
    assert state.jobs.jobs == [] and state.jobs.running is None
    assert state.jobs.error.startswith(f"Can't reach the farm coordinator at {farm.url}")
    state.want_jobs("", "", {})  # no farm chosen now
    assert state.jobs.jobs == [] and state.jobs.error == ""
