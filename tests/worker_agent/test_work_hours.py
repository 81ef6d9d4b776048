"""Working hours: a worker that is an artist's desktop by day takes tasks only at night."""

from __future__ import annotations

import threading
import time
from datetime import datetime

import pytest

from tests.support.waiting import wait_for
from tests.worker_agent.conftest import LiveFarm
from tests.worker_agent.test_agent_loop import config, fake_blender, submit_sleep
from worker_agent import agent as agent_module
from worker_agent import cli
from worker_agent.agent import Agent
from worker_agent.schedule import BadHours, WorkHours


def at(hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 12, 3, hour, minute, 17)


def test_a_range_past_midnight_and_several_ranges() -> None:
    night = WorkHours.parse("19:00-07:30")
    assert [night.working(at(h, m)) for h, m in ((18, 59), (19, 0), (0, 0), (7, 29), (7, 30))] == [
        False,
        True,
        True,
        True,
        False,
    ]
    assert night.next_start(at(12, 0)) == datetime(2026, 12, 3, 19, 0)
    assert night.next_start(at(23, 0)) == at(23, 0)  # working now
    split = WorkHours.parse("12:00-13:00, 20:00-24:00")
    assert split.working(at(12, 30)) and split.working(at(23, 59)) and not split.working(at(0, 0))
    assert split.next_start(at(13, 0)) == datetime(2026, 12, 3, 20, 0)
    assert split.describe() == "12:00-13:00, 20:00-24:00"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("night", "'night' is not a range like 19:00-07:30"),
        ("19:00-07:60", "is not a time of day"),
        ("25:00-07:00", "is not a time of day"),
        ("08:00-08:00", "is empty"),
        ("19:00-07:00,", "'' is not a range"),
    ],
)
def test_hours_that_are_not_hours_are_refused(text: str, says: str) -> None:
    with pytest.raises(BadHours, match=says):
        WorkHours.parse(text)


def test_the_worker_command_refuses_bad_hours_in_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert cli.main(["--work-hours", "9-5", "--token", "x" * 20]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --work-hours '9-5': '9-5' is not a range like 19:00-07:30")
    assert "Traceback" not in err


def test_outside_its_hours_the_worker_takes_nothing_then_works_when_they_begin(
    farm: LiveFarm, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(agent_module, "REST_CHECK", 0.1)
    job_id = submit_sleep(farm, count=2)
    agent = Agent(
        config(
            farm,
            fake_blender(farm.root / "bin"),
            work_hours=WorkHours.parse("19:00-07:00"),
            max_tasks=2,
        )
    )
    now = [at(12, 0)]
    agent.clock = lambda: now[0]
    thread = threading.Thread(target=agent.run, name="agent")
    thread.start()
    try:
        wait_for(lambda: agent.resting, 10, "the worker resting by day")
        time.sleep(1.5)  # several looks at the clock: still day, nothing taken
        tasks = farm.client.tasks(job_id)["tasks"]
        assert [t["status"] for t in tasks] == ["queued", "queued"]
        # The farm shows it resting until the evening, not offline, and says so for the job.
        (worker,) = farm.client.workers()
        assert worker["status"] == "resting", worker
        assert worker["resting_until"] == datetime(2026, 12, 3, 19, 0).timestamp()
        warning = farm.client.job(job_id)["warning"]
        assert warning.startswith("1 worker able to run it is resting until 19:00"), warning
        now[0] = at(19, 0)  # evening: work begins
        wait_for(lambda: farm.client.job(job_id)["status"] == "completed", 20, "the job done")
        assert not agent.resting
        assert farm.client.workers()[0]["status"] != "resting"  # (offline: max_tasks)
    finally:
        agent.shutdown(now=True)
        thread.join(30)
    assert not thread.is_alive()
