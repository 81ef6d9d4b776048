"""The dashboard in a real browser: Debian's Chromium driven by Playwright against
a real `python -m coordinator serve`, with real jobs moved along by a fake
worker through FarmClient. Also makes the screenshots in docs/images/."""

from __future__ import annotations

import math
import os
import re
import struct
import time
import uuid
import zlib
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from coordinator.client.http import FarmClient
from coordinator.core.hashing import sha256_file
from tests.browser.common import (
    TOKEN,
    Farm,
    claim_of,
    fake_worker,
    render_job,
    sign_in,
    sleep_job,
)

pytestmark = [pytest.mark.browser, pytest.mark.usefixtures("leave_no_work")]

REPO = Path(__file__).resolve().parents[2]
IMAGES = REPO / "docs" / "images"


# ================================================================== tests
def test_sign_in_refuses_a_wrong_token_clearly(page: Any, farm: Farm) -> None:
    sign_in(page, farm, token="not-the-token")
    message = page.locator("#login-message")
    expect(message).to_contain_text("That token was refused")
    expect(page.get_by_label("Farm token")).to_have_attribute("aria-invalid", "true")
    page.get_by_label("Farm token").fill(TOKEN)
    page.get_by_label("Farm token").press("Enter")  # the keyboard works as well as the mouse
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    expect(page.locator("#live")).to_have_text("Live")
    page.get_by_role("button", name="Sign out").click()
    expect(page.locator("#login-message")).to_contain_text("signed out")
    assert page.evaluate("sessionStorage.getItem('farm-token')") is None


def test_filter_jobs_by_name_and_status(page: Any, farm: Farm) -> None:
    tag = uuid.uuid4().hex[:6]
    names = [f"shot_{tag}_010", f"Shot_{tag}_020", f"test_{tag}"]
    jobs = [sleep_job(farm, name) for name in names]
    farm.api.cancel_job(jobs[1]["id"])
    sign_in(page, farm)
    rows = page.locator("table.jobs tbody tr")
    page.get_by_label("Name").fill(f"SHOT_{tag}_*")  # a glob, any case
    expect(rows).to_have_count(2)
    expect(page.locator("#jobs-summary")).to_have_text("2 jobs match")
    assert f"name=SHOT_{tag}_*" in page.evaluate("decodeURIComponent(location.hash)")
    page.locator("label.chip", has_text="Canceled").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(f"Shot_{tag}_020")
    page.get_by_label("Name").fill(f"nothing_{tag}")
    expect(page.get_by_text("No jobs match these filters.")).to_be_visible()
    page.get_by_role("button", name="Clear filters").first.click()
    expect(page.get_by_label("Name")).to_have_value("")
    # the filters live in the address, so a reload (or a shared link) keeps them
    page.get_by_label("Name").fill(f"test_{tag}")
    expect(rows).to_have_count(1)
    page.reload()
    expect(page.get_by_label("Name")).to_have_value(f"test_{tag}")
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)


def test_open_a_job_cancel_it_and_see_changes_arrive_live(page: Any, farm: Farm) -> None:
    name = f"live_{uuid.uuid4().hex[:6]}"
    job = sleep_job(farm, name, tasks=2, priority=100)
    worker = fake_worker(farm, f"live-{uuid.uuid4().hex[:4]}")
    sign_in(page, farm)
    page.get_by_label("Name").fill(name)
    # the filter redraws the list after a pause: click the link of the redrawn list
    expect(page.locator("table.jobs tbody tr")).to_have_count(1)
    page.get_by_role("link", name=name).click()
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    expect(page.locator("#job-status")).to_have_text("Queued")
    page.evaluate("window.stillTheSamePage = true")

    task = claim_of(worker, job["id"])  # a worker starts: the page follows by itself
    worker.update_task(task.task_id, progress=0.5, activity="Sample 32/64", log="rendering\n")
    expect(page.locator("#job-status")).to_have_text("Active")  # as the CLI and the add-on say it
    row = page.locator(f"table.tasks tr[data-id='{task.task_id}']")
    expect(row).to_contain_text("50%")
    expect(row).to_contain_text("Sample 32/64")
    row.get_by_role("button", name="Log of sleep 1/2").click()
    expect(page.locator("pre.log")).to_contain_text("rendering")
    worker.update_task(task.task_id, log="frame 2 done\n")
    expect(page.locator("pre.log")).to_contain_text("frame 2 done")  # the log tail follows

    page.get_by_role("button", name="Cancel job").click()
    expect(page.locator("#job-status")).to_have_text("Canceled")
    expect(page.locator("#announcer")).to_have_text(f"Job {name} is now Canceled.")
    assert worker.control(task.task_id, wait=0)[0] == "stop"  # its worker was told to stop

    farm.api.requeue_job(job["id"])  # someone else acts (CLI, add-on): it shows up here too
    expect(page.locator("#job-status")).to_have_text("Queued")
    expect(page.get_by_role("button", name="Pause")).to_be_visible()
    assert page.evaluate("window.stillTheSamePage") is True  # no reload happened
    farm.api.cancel_job(job["id"])


def test_job_actions_regenerate_and_task_actions(page: Any, farm: Farm) -> None:
    name = f"regen_{uuid.uuid4().hex[:6]}"
    job = sleep_job(farm, name, tasks=2)
    sign_in(page, farm)
    page.goto(f"{farm.url}/#/jobs/{job['id']}")
    expect(page.get_by_role("heading", name=name)).to_be_visible()
    page.get_by_role("button", name="Regenerate…").click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_label("Tasks").fill("0")
    dialog.get_by_role("button", name="Regenerate").click()
    expect(dialog.get_by_role("alert")).to_contain_text("task_count")  # refused, and why
    expect(dialog.get_by_label("Tasks")).to_have_attribute("aria-invalid", "true")
    dialog.get_by_label("Tasks").fill("4")
    dialog.get_by_role("button", name="Regenerate").click()
    expect(page.get_by_role("dialog")).to_have_count(0)
    expect(page.locator("table.tasks tbody tr")).to_have_count(4)
    expect(page.locator(".reason")).to_contain_text("task_count 2 → 4")
    first = page.locator("table.tasks tbody tr").first
    first.get_by_role("button", name="Cancel sleep 1/4").click()
    expect(first.locator(".badge")).to_have_text("Canceled")
    first.get_by_role("button", name="Requeue sleep 1/4").click()
    expect(first.locator(".badge")).to_have_text("Queued")
    page.get_by_role("spinbutton", name="Priority").fill("77")
    page.get_by_role("spinbutton", name="Priority").press("Enter")
    expect(page.locator(".facts").first).to_contain_text("Priority77")
    page.get_by_role("button", name="Delete…").click()
    page.get_by_role("dialog").get_by_role("button", name="Delete job").click()
    expect(page.get_by_role("heading", name="Jobs")).to_be_visible()
    assert farm.api.jobs(name=name)["total"] == 0


def test_a_big_jobs_tasks_come_a_page_at_a_time(page: Any, farm: Farm) -> None:
    name = f"big_{uuid.uuid4().hex[:6]}"
    job = sleep_job(farm, name, tasks=250)
    first = farm.api.tasks(job["id"], limit=1)["tasks"][0]
    farm.api.cancel_task(first["id"])  # no worker needed: other tests' jobs may be queued
    sign_in(page, farm)
    page.goto(f"{farm.url}/#/jobs/{job['id']}")
    rows = page.locator("table.tasks tbody tr")
    expect(rows).to_have_count(100)
    expect(page.locator(".pager")).to_contain_text("1–100 of 250")
    expect(rows.first).to_contain_text("sleep 1/250")
    page.get_by_role("button", name="Next →").click()
    expect(page.locator(".pager")).to_contain_text("101–200 of 250")
    expect(rows.first).to_contain_text("sleep 101/250")
    page.get_by_role("button", name="Next →").click()
    expect(rows).to_have_count(50)
    expect(page.get_by_role("button", name="Next →")).to_be_disabled()
    page.get_by_label("Show tasks").select_option("canceled")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text("sleep 1/250")
    expect(page.locator(".pager")).to_have_count(0)
    farm.api.cancel_job(job["id"])


def test_workers_page_and_warnings(page: Any, farm: Farm) -> None:
    name = f"node-{uuid.uuid4().hex[:4]}"
    worker = fake_worker(farm, name, blender="4.2.3")
    old = sleep_job(farm, f"five_{uuid.uuid4().hex[:6]}", tasks=1, blender_version="5.0")
    sign_in(page, farm)
    page.get_by_label("Name").fill(old["name"])
    expect(page.locator("table.jobs .warn-icon")).to_contain_text("Blender 5.0 or newer")
    page.get_by_role("link", name="Workers").click()
    row = page.locator("table.workers tr", has_text=name)
    expect(row).to_contain_text("Idle")
    expect(row).to_contain_text("4.2.3")
    expect(row).to_contain_text("CUDA:0 RTX 4090")
    disable = row.get_by_role("button", name=f"Disable {name}")
    disable.focus()
    page.keyboard.press("Enter")
    expect(row).to_contain_text("disabled")
    enable = row.get_by_role("button", name=f"Enable {name}")
    expect(enable).to_be_focused()  # a live redraw keeps the keyboard user's place
    page.keyboard.press("Enter")
    expect(row.get_by_role("button", name=f"Disable {name}")).to_be_visible()
    worker.sign_off()  # it leaves: offline, and now it can be removed
    expect(row).to_contain_text("Offline")
    row.get_by_role("button", name=f"Remove {name}").click()
    page.get_by_role("dialog").get_by_role("button", name="Remove worker").click()
    expect(page.locator("table.workers tr", has_text=name)).to_have_count(0)
    farm.api.cancel_job(old["id"])


def test_screenshots_for_the_docs(page: Any, farm: Farm, tmp_path: Path) -> None:
    """The pictures of docs/dashboard.md: a staged farm (sleep jobs, workers driven
    through FarmClient, one real render's frames). They land in tmp unless
    FARM_UPDATE_SCREENSHOTS=1, so a test run leaves the committed ones alone."""
    images = IMAGES if os.environ.get("FARM_UPDATE_SCREENSHOTS") == "1" else tmp_path / "shots"
    api = farm.api
    for job in api.jobs(limit=500)["jobs"]:  # a clean list for the picture
        api.delete_job(job["id"])
    jobs = {
        name: sleep_job(farm, name, tasks=tasks, submitter=who, max_attempts=tries)
        for name, tasks, who, tries in [
            ("forest_flyover", 40, "mia@studio-2", 3),
            ("shot_030_comp", 12, "ana@desk-3", 1),
            ("asset_previews", 2, "bob@ws-7", 3),
            ("turntable_v2", 8, "bob@ws-7", 3),
            ("shot_020_anim", 24, "ana@desk-3", 3),
        ]
    }
    shot = render_job(farm, tmp_path, "shot_010_lighting", frames="1-24")
    workers = [fake_worker(farm, n) for n in ("render-01", "render-02", "render-03")]
    run_render(workers[0], shot, chunks=4, tmp_path=tmp_path)
    active = claim_of(workers[0], shot["id"])
    workers[0].update_task(
        active.task_id,
        progress=0.62,
        activity="frame 19 · sample 40/64",
        log=render_log(active.payload["frames"][:3]),
    )
    api.set_priority(shot["id"], 50)
    for name, priority in [("turntable_v2", 90), ("shot_030_comp", 95), ("asset_previews", 99)]:
        api.set_priority(jobs[name]["id"], priority)
    spin = claim_of(workers[1], jobs["asset_previews"]["id"])
    workers[1].complete_task(spin.task_id)
    spin = claim_of(workers[1], jobs["asset_previews"]["id"])
    workers[1].complete_task(spin.task_id)
    broken = claim_of(workers[2], jobs["shot_030_comp"]["id"])
    workers[2].fail_task(broken.task_id, reason="Blender exited with code 1 (out of memory)")
    spin = claim_of(workers[1], jobs["turntable_v2"]["id"])
    workers[1].complete_task(spin.task_id)
    spin = claim_of(workers[1], jobs["turntable_v2"]["id"])
    workers[1].update_task(spin.task_id, progress=0.35, activity="sample 22/64")
    api.pause_job(jobs["shot_020_anim"]["id"])
    api.cancel_job(jobs["forest_flyover"]["id"])
    sleep_job(farm, "fluid_sim_v5", tasks=6, submitter="mia@studio-2", blender_version="5.0")

    sign_in(page, farm)
    expect(page.locator("table.jobs tbody tr")).to_have_count(7)
    expect(page.locator("#live")).to_have_text("Live")
    page.mouse.click(5, 880)  # no focus ring in the picture
    images.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(images / "dashboard.png"))

    page.get_by_role("link", name="shot_010_lighting").click()
    expect(page.locator("#latest-frame")).to_be_visible()
    task_name = api.task(active.task_id)["name"]
    page.get_by_role("button", name=f"Log of {task_name}").click()
    expect(page.locator("pre.log")).to_contain_text("Fra:19")
    page.mouse.click(5, 5)
    page.evaluate("window.scrollTo(0, 0)")  # the sticky bar at the top of the picture
    page.screenshot(path=str(images / "dashboard-job.png"), full_page=True)
    assert (images / "dashboard.png").stat().st_size > 10_000


# ------------------------------------------------- a render job, faked well
def run_render(worker: FarmClient, job: dict[str, Any], *, chunks: int, tmp_path: Path) -> None:
    """The worker finishes `chunks` tasks, uploading a picture per frame."""
    image = picture()  # the same picture for every frame: drawing one takes a while
    for _ in range(chunks):
        task = claim_of(worker, job["id"])
        for frame in task.payload["frames"]:
            path = tmp_path / f"frame_{frame:04d}.png"
            path.write_bytes(image)
            worker.upload_output(task.task_id, path, name=path.name, frame=frame)
        worker.update_task(task.task_id, progress=1.0, log=render_log(task.payload["frames"]))
        worker.complete_task(task.task_id)
    assert sha256_file(tmp_path / "frame_0001.png")


def render_log(frames: list[int]) -> str:
    lines = []
    for frame in frames:
        for sample in (16, 32, 48, 64):
            lines.append(
                f"Fra:{frame} Mem:412.6M (Peak 498.1M) | Time:00:0{sample // 16}.21 |"
                f" Remaining:00:0{4 - sample // 16}.80 | Mem:96.4M, Peak:131.0M | Scene,"
                f" ViewLayer | Sample {sample}/64"
            )
        lines.append(f"Saved: 'frame_{frame:04d}.png'")
    return "\n".join(lines) + "\n"


def picture(width: int = 480, height: int = 270) -> bytes:
    """A small rendered-looking PNG: dusk sky, a lit sphere, a ground plane."""
    sun = 0.45
    rows = []
    for y in range(height):
        row = bytearray([0])
        for x in range(width):
            u, v = x / width, y / height
            if v < 0.62:  # sky
                t = v / 0.62
                r, g, b = 40 + 200 * t, 60 + 110 * t, 120 + 30 * t
            else:  # ground, darker towards us
                t = (v - 0.62) / 0.38
                checker = (int(u * 12 + t * 6) + int(t * 8)) % 2
                r, g, b = (70 - 40 * t + 12 * checker,) * 3
            dx, dy = (u - 0.5) * width / height, v - 0.55
            d = math.hypot(dx, dy)
            if d < 0.22:  # a sphere lit from the upper left
                nz = math.sqrt(max(0.0, 0.22**2 - d * d)) / 0.22
                light = max(0.0, (-dx * sun - dy * 0.6 + nz * 0.7))
                r, g, b = 232 * light + 20, 119 * light + 12, 46 * light + 10
            elif v > 0.62 and math.hypot(dx * 0.9, (v - 0.77) * 3.2) < 0.2:
                r, g, b = r * 0.55, g * 0.55, b * 0.55  # its shadow
            row += bytes((min(255, int(r)), min(255, int(g)), min(255, int(b))))
        rows.append(bytes(row))
    raw = zlib.compress(b"".join(rows), 6)

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_a_job_shows_its_eta_once_a_task_finished(page: Any, farm: Farm) -> None:
    name = f"eta_{uuid.uuid4().hex[:6]}"
    job = sleep_job(farm, name, tasks=3, priority=100)
    worker = fake_worker(farm, f"eta-{uuid.uuid4().hex[:4]}")
    worker.complete_task(claim_of(worker, job["id"]).task_id)
    assert farm.api.job(job["id"], tasks=False)["eta_seconds"] is not None
    sign_in(page, farm)
    page.get_by_label("Name").fill(name)
    row = page.locator("table.jobs tbody tr")
    expect(row).to_have_count(1)
    expect(row.locator(".eta")).to_contain_text(" left")
    page.get_by_role("link", name=name).click()
    expect(page.locator(".progress-line")).to_contain_text(" left")
    # what each finished task took, claim to completion; nothing for the others yet
    times = page.locator("table.tasks tbody td.time")
    expect(times).to_have_count(3)
    expect(times.first).to_have_text(re.compile(r"^\d+\.\d s$"))
    expect(times.nth(1)).to_have_text("")
    farm.api.cancel_job(job["id"])


def test_a_worker_is_tagged_from_the_workers_page(page: Any, farm: Farm) -> None:
    name = f"tagme-{uuid.uuid4().hex[:4]}"
    fake_worker(farm, name)
    sign_in(page, farm)
    page.get_by_role("link", name="Workers").click()
    row = page.locator("table.workers tr", has_text=name)
    page.once("dialog", lambda dialog: dialog.accept("gpu, fast"))
    row.get_by_role("button", name=f"Edit tags of {name}").click()
    expect(row.locator("td.tags")).to_contain_text("gpu, fast")
    (worker,) = (w for w in farm.api.workers() if w["name"] == name)
    assert worker["tags"] == ["gpu", "fast"]
    page.once("dialog", lambda dialog: dialog.accept("no good"))
    row.get_by_role("button", name=f"Edit tags of {name}").click()
    expect(page.get_by_role("alert")).to_contain_text("'no good' is not a tag")


def test_a_worker_resting_outside_its_working_hours_shows_until_when(page: Any, farm: Farm) -> None:
    name = f"desk-{uuid.uuid4().hex[:4]}"
    worker = fake_worker(farm, name)
    until = time.time() + 3 * 3600
    worker.rest(until)
    job = sleep_job(farm, f"night_{uuid.uuid4().hex[:6]}", tasks=1, requires_tags=[name])
    farm.api.set_worker_tags(worker_id_of(farm, name), [name])  # only it can run the job
    sign_in(page, farm)
    page.get_by_label("Name").fill(job["name"])
    expect(page.locator("table.jobs .warn-icon")).to_have_attribute(
        "title", re.compile(r"^1 worker able to run it is resting until \d\d:\d\d")
    )
    page.get_by_role("link", name="Workers").click()
    row = page.locator("table.workers tr", has_text=name)
    clock = page.evaluate(
        "t => new Date(t * 1000).toLocaleTimeString([], {hour: '2-digit', minute: '2-digit',"
        " hour12: false})",
        until,
    )
    expect(row.locator(".badge")).to_have_text(f"Resting · until {clock}")
    expect(page.locator(".summary")).to_contain_text("resting (working hours)")
    assert worker.next_task(wait=0) is not None  # its hours began: it asks for work
    expect(row.locator(".badge")).to_contain_text("Busy")
    worker.sign_off()


def worker_id_of(farm: Farm, name: str) -> str:
    (worker,) = (w for w in farm.api.workers() if w["name"] == name)
    return str(worker["id"])
