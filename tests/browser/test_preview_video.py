"""The preview video in the dashboard's job page, in Debian's Chromium.

Which codec: a VP9 WebM and an H.264 MP4, both written by Blender 3.4, both
play there (`canPlayType` says "probably" and the element reaches
HAVE_ENOUGH_DATA); the farm's previews are VP9 WebM, which browsers without
H.264 licences play too (job_types/preview.py). The WebM here is made by
Blender with the settings the worker's preview uses; the worker's own preview
of a real render is made in tests/e2e/test_movie_render.py.
"""

from __future__ import annotations

import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api
from playwright.sync_api import expect

from coordinator.client.http import FarmClient
from tests.support.components import CHROMIUM, DEBIAN_BLENDER
from tests.support.coordinator_process import coordinator_process
from tests.support.fakeblend import fake_blend_bytes

pytestmark = [pytest.mark.browser, pytest.mark.blender]

TOKEN = "preview-video-test-token-2026"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--no-first-run"]

# Runs inside Blender: six frames of a colour strip as the worker's preview encodes them.
WEBM_SCRIPT = """
import sys
import bpy
scene = bpy.context.scene
render = scene.render
scene.frame_start, scene.frame_end = 1, 6
render.fps = 24
render.resolution_x, render.resolution_y, render.resolution_percentage = 64, 48, 100
strips = scene.sequence_editor_create().sequences
strips.new_effect("colour", "COLOR", 1, frame_start=1, frame_end=7).color = (0.9, 0.4, 0.1)
render.image_settings.file_format = "FFMPEG"
render.ffmpeg.format = "WEBM"
render.ffmpeg.codec = "WEBM"
render.ffmpeg.constant_rate_factor = "MEDIUM"
render.ffmpeg.ffmpeg_preset = "REALTIME"
render.ffmpeg.audio_codec = "NONE"
render.filepath = sys.argv[-1]
bpy.ops.render.render(animation=True)
"""


@pytest.fixture(scope="module")
def webm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("webm")
    script, movie = folder / "webm.py", folder / "farm_preview.webm"
    script.write_text(WEBM_SCRIPT)
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-exit-code", "1"]
    subprocess.run(
        [*command, "--python", str(script), "--", str(movie)],
        check=True,
        capture_output=True,
        timeout=120,
    )
    assert movie.stat().st_size > 0
    return movie


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, FarmClient]]:
    root = tmp_path_factory.mktemp("preview")
    with coordinator_process(root / "data", token=TOKEN, args=["--lease-seconds", "30"]) as running:
        api = running.client()
        try:
            yield running.url, api
        finally:
            api.session.close()


def finished_job_with_preview(url: str, api: FarmClient, webm: Path, tmp_path: Path) -> int:
    """A 6-frame image-sequence job a fake worker finishes, uploading `webm` as its preview."""
    blend = tmp_path / "shot.blend"
    blend.write_bytes(fake_blend_bytes(4096))
    hashes, _ = api.upload_project({"shot.blend": blend})
    job = api.submit(
        {
            "name": f"preview_{uuid.uuid4().hex[:6]}",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            "deliver": False,
            "settings": {
                "frames": "1-6",
                "chunk_size": 6,
                "output": "/srv/shot/frame_####",
                "preview": True,
            },
        }
    )
    creds = api.register_worker(
        name="w-preview", host="w.lan", blender_version="3.4.1", devices=["CPU"]
    )
    worker = FarmClient(url, token=creds.secret)
    render = worker.next_task(wait=0)
    assert render is not None and render.kind == "render"
    for frame in render.payload["frames"]:
        path = tmp_path / f"frame_{frame:04d}.png"
        path.write_bytes(b"not a png")
        worker.upload_output(render.task_id, path, name=path.name, frame=frame)
    worker.complete_task(render.task_id)
    preview = worker.next_task(wait=0)
    assert preview is not None and preview.kind == "preview"
    worker.upload_output(preview.task_id, webm, name="farm_preview.webm", frame=None)
    worker.complete_task(preview.task_id)
    assert api.job(job["id"], tasks=False)["status"] == "completed"
    return int(job["id"])


def test_the_job_page_plays_the_preview_video(
    farm: tuple[str, FarmClient], webm: Path, tmp_path: Path
) -> None:
    url, api = farm
    job_id = finished_job_with_preview(url, api, webm, tmp_path)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        page = browser.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{url}/")
        page.get_by_label("Farm token").fill(TOKEN)
        page.get_by_role("button", name="Sign in").click()
        page.goto(f"{url}/#/jobs/{job_id}")
        video = page.locator("#preview-video")
        expect(video).to_be_visible(timeout=8000)
        expect(page.get_by_text("Preview video", exact=True)).to_be_visible()
        expect(video).to_have_js_property("readyState", 4, timeout=8000)  # HAVE_ENOUGH_DATA
        state: dict[str, Any] = video.evaluate(
            "v => ({duration: v.duration, width: v.videoWidth, error: v.error && v.error.code,"
            " canPlay: v.canPlayType('video/webm; codecs=\"vp9\"')})"
        )
        print(f"preview in Chromium: {state}")
        assert state["error"] is None and state["canPlay"] == "probably"
        assert abs(state["duration"] - 6 / 24) < 0.05 and state["width"] == 64
        download = page.get_by_role("link", name="Download")
        assert download.get_attribute("download") == f"job-{job_id}-preview.webm"
        browser.close()
    assert errors == [], errors
