"""Working hours (issue 16) in the real processes: `python -m worker_agent
--work-hours` outside its hours, against a real coordinator on loopback.

The in-process test (tests/worker_agent/test_work_hours.py) moves a mocked
clock; this one runs the command as an artist's desktop does, on the real
clock, and checks what the farm sees: the worker resting until its hours
begin, and a queued task it does not take.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from tests.support.blendgen import DEBIAN_BLENDER
from tests.support.coordinator_process import REPO, coordinator_process, environment
from tests.support.waiting import wait_for

TOKEN = "work-hours-farm-token"


def hours_excluding_now(now: datetime) -> tuple[str, datetime]:
    """An hour of work that starts one to two hours from now: --work-hours's text,
    and when the worker will next start (the local clock, as the worker reads it)."""
    start = (now + timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    end = start.hour + 1  # 24:00 for an hour from 23:00
    return f"{start.hour:02d}:00-{end:02d}:00", start


def test_the_hours_chosen_exclude_now() -> None:
    for hour, minute in ((0, 0), (10, 59), (21, 30), (22, 0), (23, 59)):
        now = datetime(2026, 12, 3, hour, minute)
        text, start = hours_excluding_now(now)
        begins, ends = (int(part[:2]) for part in text.split("-"))
        assert not begins <= now.hour < ends and start.hour == begins, (now, text)
        assert timedelta(hours=1) < start - now <= timedelta(hours=2), (now, start)


@pytest.mark.blender
def test_a_worker_outside_its_hours_rests_and_takes_no_task(tmp_path: Path) -> None:
    with coordinator_process(tmp_path / "farm", token=TOKEN) as farm:
        client = farm.client()
        job = client.submit(
            {"name": "by night", "type": "sleep", "settings": {"task_count": 1, "seconds": 0}}
        )
        hours, start = hours_excluding_now(datetime.now())
        log = tmp_path / "worker.log"
        argv = [sys.executable, "-m", "worker_agent", "--coordinator", farm.url]
        argv += ["--name", "desk", "--blender", DEBIAN_BLENDER, "--work-hours", hours]
        argv += ["--cache-dir", str(tmp_path / "cache"), "--poll-wait", "1", "--no-standby"]
        with log.open("wb") as out:  # a file, not a pipe nobody reads
            worker = subprocess.Popen(
                argv,
                cwd=REPO,
                env={**environment(), "FARM_TOKEN": TOKEN},
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        try:

            def resting() -> bool:
                assert worker.poll() is None, log.read_text(errors="replace")
                listed = client.workers()
                return bool(listed) and listed[0]["status"] == "resting"

            wait_for(resting, 30, "the worker listed as resting")
            (listed,) = client.workers()
            assert listed["name"] == "desk"
            assert listed["resting_until"] == start.timestamp(), (hours, listed)
            time.sleep(3)  # three of its polls' length: it asks for nothing
            tasks = client.tasks(int(job["id"]))["tasks"]
            assert [(t["status"], t["worker_id"]) for t in tasks] == [("queued", None)]
            assert client.workers()[0]["status"] == "resting"
            warning = client.job(int(job["id"]))["warning"] or ""
            assert warning.startswith(f"1 worker able to run it is resting until {start:%H:%M}"), (
                warning
            )
            worker.send_signal(signal.SIGTERM)  # a rest ends at once when told to stop
            assert worker.wait(15) == 0, log.read_text(errors="replace")
        finally:
            if worker.poll() is None:
                worker.kill()
                worker.wait()
        text = log.read_text(errors="replace")
        assert f"outside working hours ({hours}): no new tasks until {start:%H:%M}" in text, text
        assert "Traceback" not in text, text
        assert client.tasks(int(job["id"]))["tasks"][0]["status"] == "queued"
