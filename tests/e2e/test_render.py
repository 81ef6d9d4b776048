"""End to end with real Blender: coordinator + workers as real processes on loopback."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from coordinator.client.http import FarmClient
from coordinator.core.hashing import sha256_file
from tests.support.blendgen import BPY_PYTHON, DEBIAN_BLENDER, make_scene, png_pixels
from tests.support.localfarm import LocalFarm, farm_fixture
from tests.support.processes import pid_alive, wait_for_blender

pytestmark = [pytest.mark.blender, pytest.mark.slow]

# Cycles on the CPU with a fixed seed, no adaptive sampling and no denoising
# renders the same pixels every time on one machine: the farm must match a
# local render exactly. Allow 1/255 per channel for float rounding in PNG
# conversion; nothing else.
PIXEL_TOLERANCE = 1


def local_render(
    blend: Path, out_dir: Path, frames: tuple[int, int], *, blender: str = DEBIAN_BLENDER
) -> Path:
    """What the artist would get from `blender -b FILE -o ... -a`."""
    pattern = out_dir / "frame_####"
    if Path(blender).name.startswith("python"):
        script = (
            f"import bpy; bpy.ops.wm.open_mainfile(filepath={str(blend)!r});"
            f" s=bpy.context.scene; s.render.filepath={str(pattern)!r};"
            f" s.frame_start={frames[0]}; s.frame_end={frames[1]};"
            " bpy.ops.render.render(animation=True)"
        )
        command = [blender, "-c", script]
    else:
        command = [
            blender,
            "-b",
            "--factory-startup",
            "-Y",
            str(blend),
            "-o",
            str(pattern),
            "-s",
            str(frames[0]),
            "-e",
            str(frames[1]),
            "-a",
        ]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return out_dir


def assert_same_pixels(a: Path, b: Path) -> None:
    pa, pb = png_pixels(a), png_pixels(b)
    assert len(pa) == len(pb), f"{a.name}: sizes differ"
    worst = max((abs(x - y) for x, y in zip(pa, pb, strict=True)), default=0)
    assert worst <= PIXEL_TOLERANCE, f"{a.name}: a channel differs by {worst}/255"


def submit(
    client: FarmClient,
    files: dict[str, Path],
    blend: str,
    out: Path,
    *,
    frames: str,
    chunk: int,
    version: str = "3.4",
    **settings: Any,
) -> int:
    hashes, _ = client.upload_project(files)
    job = client.submit(
        {
            "name": f"e2e {out.name}",
            "type": "blender-render",
            "blend": blend,
            "files": hashes,
            "blender_version": version,
            "settings": {
                "frames": frames,
                "chunk_size": chunk,
                "output": str(out / "frame_####"),
                "preview": False,  # on by default; test_movie_render.py shows it made
                **settings,
            },
        }
    )
    return int(job["id"])


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_scene(tmp_path_factory.mktemp("scene") / "shot.blend", frames=(1, 6))


# No standby Blender: the cancel test must find the Blender that renders, not an idle one.
farm = farm_fixture(
    workers=("w1", "w2"),
    blender=DEBIAN_BLENDER,
    lease_seconds=3.0,
    zeroconf=True,
    worker_args=("--no-standby",),
)


def test_six_frames_in_chunks_of_two_match_a_local_render(
    farm: LocalFarm, scene: Path, tmp_path: Path
) -> None:
    out = tmp_path / "farm-out"
    job_id = submit(farm.client(), {"shot.blend": scene}, "shot.blend", out, frames="1-6", chunk=2)
    job = farm.wait_for_job(job_id, timeout=180)
    assert job["status"] == "completed", job["status_reason"]
    names = sorted(os.listdir(out))
    assert names == [f"frame_{n:04d}.png" for n in range(1, 7)]
    local = local_render(scene, tmp_path / "local", (1, 6))
    assert sorted(os.listdir(local)) == names  # named exactly as a local render names them
    for name in names:
        assert_same_pixels(out / name, local / name)
    workers = {t["worker_id"] for t in farm.client().job(job_id)["tasks"]}
    assert len(workers) == 2, "both workers should have rendered a chunk"


def test_external_texture_travels_with_the_job(farm: LocalFarm, tmp_path: Path) -> None:
    project = tmp_path / "project"
    texture = project / "textures" / "checker.png"
    blend = make_scene(project / "tex.blend", frames=(1, 1), texture=texture)
    out = tmp_path / "out"
    job_id = submit(
        farm.client(),
        {"tex.blend": blend, "textures/checker.png": texture},
        "tex.blend",
        out,
        frames="1",
        chunk=1,
    )
    assert farm.wait_for_job(job_id, timeout=120)["status"] == "completed"
    local = local_render(blend, tmp_path / "local", (1, 1))
    assert_same_pixels(out / "frame_0001.png", local / "frame_0001.png")
    # Without the texture Blender renders magenta: prove the pixels depend on it.
    texture.rename(texture.with_suffix(".gone"))
    missing = local_render(blend, tmp_path / "missing", (1, 1))
    assert png_pixels(missing / "frame_0001.png") != png_pixels(out / "frame_0001.png")


def test_cancel_stops_blender_within_a_second(farm: LocalFarm, tmp_path: Path) -> None:
    slow = make_scene(tmp_path / "slow.blend", frames=(1, 2), samples=4096, resolution=(320, 240))
    client = farm.client()
    job_id = submit(
        client, {"slow.blend": slow}, "slow.blend", tmp_path / "out", frames="1-2", chunk=2
    )
    pid = wait_for_blender(farm, timeout=60, opening="slow.blend")
    started = time.monotonic()
    client.job_action(job_id, "cancel")
    while pid_alive(pid):
        assert time.monotonic() - started < 3.0, "Blender still running 3 s after cancel"
        time.sleep(0.02)
    took = time.monotonic() - started
    print(f"cancel -> Blender gone in {took:.2f} s")
    assert took < 1.5
    assert client.job(job_id, tasks=False)["status"] == "canceled"
    assert all(w.process.poll() is None for w in farm.workers)


def test_broken_blend_fails_readably_and_worker_keeps_serving(
    farm: LocalFarm, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.blend"
    broken.write_bytes(b"BLENDER-v304" + b"\x00garbage" * 100)
    client = farm.client()
    job_id = submit(
        client, {"broken.blend": broken}, "broken.blend", tmp_path / "out", frames="1", chunk=1
    )
    job = farm.wait_for_job(job_id, timeout=120)
    assert job["status"] == "failed"
    assert "failed" in job["status_reason"]
    task = client.job(job_id)["tasks"][0]
    assert task["attempts"] >= 2  # retried on the other worker before giving up
    detail = client.task(task["id"])
    reasons = [f["reason"] for f in detail["failures"]]
    assert reasons and all("Blender exited with code" in r for r in reasons), reasons
    log = client.task_log(task["id"])
    assert "--- last lines ---" in log
    sleep = client.submit(
        {"name": "after broken", "type": "sleep", "settings": {"task_count": 2, "seconds": 0}}
    )
    assert farm.wait_for_job(sleep["id"], timeout=60)["status"] == "completed"


def test_kill_9_worker_mid_chunk_requeues_and_every_frame_arrives_once(
    tmp_path: Path,
) -> None:
    scene = make_scene(tmp_path / "k.blend", frames=(1, 4), samples=128, resolution=(96, 72))
    with LocalFarm(root=tmp_path / "farm", lease_seconds=2.0) as farm:
        farm.start_coordinator()
        victim = farm.start_worker("victim", blender=DEBIAN_BLENDER)
        client = farm.client()
        out = tmp_path / "out"
        job_id = submit(client, {"k.blend": scene}, "k.blend", out, frames="1-4", chunk=4)
        wait_for_blender(farm, timeout=60)
        time.sleep(0.5)
        victim.kill()
        survivor = farm.start_worker("survivor", blender=DEBIAN_BLENDER)
        job = farm.wait_for_job(job_id, timeout=240)
        assert job["status"] == "completed", job["status_reason"]
        task = client.job(job_id)["tasks"][0]
        assert task["attempts"] == 2
        failures = client.task(task["id"])["failures"]
        assert any("lease expired" in f["reason"] for f in failures)
        outputs = client.outputs(job_id)
        assert sorted(o["name"] for o in outputs) == [f"frame_{n:04d}.png" for n in range(1, 5)]
        assert sorted(os.listdir(out)) == [o["name"] for o in outputs]  # no temp files left
        for o in outputs:
            assert sha256_file(out / o["name"]) == o["sha256"]
        assert survivor.process.poll() is None
        # The killed worker's Blender must not outlive it for long (own session):
        # the agent is gone, so nothing reads its output and it ends with EPIPE or finishes.


@pytest.mark.bpy
def test_bpy_worker_renders_a_file_saved_by_blender_5(tmp_path: Path) -> None:
    scene = make_scene(tmp_path / "five.blend", frames=(1, 2), blender=str(BPY_PYTHON))
    with LocalFarm(root=tmp_path / "farm", lease_seconds=10.0) as farm:
        farm.start_coordinator()
        farm.start_worker("old", blender=DEBIAN_BLENDER)
        farm.start_worker("five", bpy_python=str(BPY_PYTHON))
        client = farm.client()
        out = tmp_path / "out"
        job_id = submit(
            client, {"five.blend": scene}, "five.blend", out, frames="1-2", chunk=1, version="5.0"
        )
        job = farm.wait_for_job(job_id, timeout=240)
        assert job["status"] == "completed", job["status_reason"]
        five = next(w["id"] for w in client.workers() if w["name"] == "five")
        assert {t["worker_id"] for t in client.job(job_id)["tasks"]} == {five}
        local = local_render(scene, tmp_path / "local", (1, 2), blender=str(BPY_PYTHON))
        for name in ("frame_0001.png", "frame_0002.png"):
            assert_same_pixels(out / name, local / name)


# ---------------------------------------------------------------- helpers
