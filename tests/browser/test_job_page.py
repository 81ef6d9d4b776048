"""The job page in Chromium against a real coordinator: what a task's time went
on, as its worker measured it, and why a task failed. The workers are fake
(FarmClient), so each task's timings and failure are known exactly."""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from coordinator.client.http import FarmClient
from tests.browser.common import Farm, claim_of, fake_worker, render_job, sign_in
from worker_agent.in_blender.inputs import Input, missing_message

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("leave_no_work")]

PNG = b"\x89PNG\r\n\x1a\n"  # enough of a frame for the farm, which stores what it gets


def render_chunk(worker: FarmClient, job_id: int, tmp_path: Path, stages: dict[str, float]) -> Any:
    """The worker renders its next task of the job: reports the stages it reached
    (seconds after it got the task), uploads a file per frame, completes it."""
    task = claim_of(worker, job_id)
    worker.update_task(task.task_id, progress=1.0, stages=stages)
    for frame in task.payload["frames"]:
        path = tmp_path / f"frame_{frame:04d}.png"
        path.write_bytes(PNG)
        worker.upload_output(task.task_id, path, name=path.name, frame=frame)
    worker.complete_task(task.task_id)
    return task


def test_the_job_page_shows_the_measured_render_time_of_a_frame(
    page: Any, farm: Farm, tmp_path: Path
) -> None:
    job = render_job(farm, tmp_path, f"timed_{uuid.uuid4().hex[:6]}", frames="1-12")  # 3 x 4
    worker = fake_worker(farm, f"timer-{uuid.uuid4().hex[:4]}")
    # 40 s to start Blender and 30 s to upload count in no frame's time: 8 s over 4 frames
    first = render_chunk(
        worker,
        job["id"],
        tmp_path,
        {"blender_ready": 40.0, "last_frame_saved": 48.0, "uploaded": 78},
    )
    sign_in(page, farm)
    page.goto(f"{farm.url}/#/jobs/{job['id']}")
    expect(page.get_by_role("heading", name=job["name"])).to_be_visible()
    median = page.locator("#frame-median")
    expect(median).to_have_text("Render time a frame: 2.0 s (median)")
    row = page.locator(f"table.tasks tr[data-id='{first.task_id}']")
    expect(row.locator("td.frame-time")).to_have_text("2.0 s")
    # claim to completion is what the farm's clock saw (well under a second here)
    expect(row.locator("td.time")).to_have_text(re.compile(r"^0\.\d s$"))
    header = page.get_by_role("columnheader", name="Render a frame")
    expect(header).to_have_attribute("title", re.compile("Blender ready.*last frame saved"))

    # two more tasks arrive live: 5 s and 3.5 s a frame, so the median is 3.5 s
    second = render_chunk(
        worker, job["id"], tmp_path, {"blender_ready": 1.0, "last_frame_saved": 21.0}
    )
    third = render_chunk(
        worker, job["id"], tmp_path, {"blender_ready": 2.5, "last_frame_saved": 16.5}
    )
    expect(median).to_have_text("Render time a frame: 3.5 s (median)")
    for task, shown in [(second, "5.0 s"), (third, "3.5 s")]:
        cells = page.locator(f"table.tasks tr[data-id='{task.task_id}'] td.frame-time")
        expect(cells).to_have_text(shown)
    # a task that measured nothing (not finished, or no frames) shows no time
    others = page.locator("table.tasks tbody tr:not([data-status='completed']) td.frame-time")
    for cell in others.all():
        expect(cell).to_have_text("")


def test_a_task_that_failed_for_missing_files_says_so_on_the_job_page(
    page: Any, farm: Farm, tmp_path: Path
) -> None:
    root = "/srv/projects/shot"
    reason = missing_message(
        [
            Input("image", "checker.png", f"{root}/tex/checker.png", "//tex/checker.png"),
            Input("sound", "rain", f"{root}/audio/rain.wav", "//audio/rain.wav"),
        ],
        root,
    )
    assert reason.startswith("missing files")  # the worker's own words (in_blender/inputs.py)
    name = f"lacking_{uuid.uuid4().hex[:6]}"
    job = render_job(farm, tmp_path, name, frames="1-2", chunk_size=2, max_attempts=1)
    worker = fake_worker(farm, f"lacker-{uuid.uuid4().hex[:4]}")
    task = claim_of(worker, job["id"])
    worker.fail_task(task.task_id, reason=reason, log="[runner] error: " + reason + "\n")
    assert farm.api.job(job["id"], tasks=False)["status"] == "failed"

    sign_in(page, farm)
    page.goto(f"{farm.url}/#/jobs/{job['id']}")
    expect(page.locator("#job-status")).to_have_text("Failed")
    why = page.locator(".status-line .reason")
    expect(why).to_be_visible()
    expect(why).to_contain_text("failed: missing files (the scene reads them; the job's project")
    expect(why).to_contain_text("tex/checker.png (image 'checker.png'), audio/rain.wav")
    expect(why).to_contain_text("missing_files=render")
    # the task's own row says it too, whole, not cut to one line
    row = page.locator(f"table.tasks tr[data-id='{task.task_id}']")
    expect(row.locator(".badge")).to_have_text("Failed")
    activity = row.locator("td.activity")
    expect(activity).to_contain_text("missing files")
    expect(activity).to_contain_text("tex/checker.png")
    clipped = activity.evaluate("el => el.scrollWidth > el.clientWidth + 1")
    assert not clipped, "the failure reason is cut off in the task's row"
    # and the log the worker sent has it, for the whole list
    row.get_by_role("button", name=re.compile("^Log of ")).click()
    expect(page.locator("pre.log")).to_contain_text("audio/rain.wav")
