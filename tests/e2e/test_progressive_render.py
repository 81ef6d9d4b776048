"""blender-render-progressive end to end: real coordinator, real workers, real Blender.

How the noise is judged. Each chunk renders a different sample range of the
same seed, so chunks merged with Cycles' weighted merge hold exactly the
samples of one render with the total count: the farm's frame must be the local
render's, up to float rounding in the weighted sum, which may move a channel
by one 8-bit level (PIXEL_TOLERANCE). Its noise, measured as the RMSE against
a REFERENCE_SAMPLES render of the same frame, must then equal the local
render's within NOISE_TOLERANCE (2 %, a fraction of what one sample more or
less changes at 16 samples: about 3 %). A merge that weighted or picked chunks
wrongly fails both: merging 4.4+ chunks of unequal length by their headers
alone moves pixels by up to 18/255 and the RMSE by 18 % (docs/progressive.md).
"""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from coordinator.client.http import FarmClient
from tests.support.blendgen import (
    BPY_PYTHON,
    DEBIAN_BLENDER,
    is_python,
    make_scene,
    png_pixels,
    png_size,
)
from tests.support.localfarm import LocalFarm, farm_fixture

pytestmark = [pytest.mark.blender, pytest.mark.slow]

PIXEL_TOLERANCE = 1  # 8-bit levels per channel
NOISE_TOLERANCE = 0.02  # relative difference of RMSE against the reference
REFERENCE_SAMPLES = 256


# ---------------------------------------------------------------- measuring
def rmse(a: Path, b: Path) -> float:
    """Root mean square difference of the colour channels, in 0..1 units."""
    pa, pb = png_pixels(a), png_pixels(b)
    assert len(pa) == len(pb), f"{a.name} and {b.name} differ in size"
    width, height = png_size(a)
    channels = len(pa) // (width * height)
    colour = [i for i in range(len(pa)) if channels < 4 or i % 4 != 3]
    return math.sqrt(sum((pa[i] - pb[i]) ** 2 for i in colour) / len(colour)) / 255


def max_difference(a: Path, b: Path) -> int:
    return max(abs(x - y) for x, y in zip(png_pixels(a), png_pixels(b), strict=True))


def local_render(
    blend: Path, out_dir: Path, frames: tuple[int, int], *, samples: int, blender: str
) -> Path:
    """What the artist gets from rendering the animation locally with `samples`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    pattern = str(out_dir / "frame_####")
    script = (
        f"import bpy; s = bpy.context.scene; s.cycles.samples = {samples};"
        f" s.render.filepath = {pattern!r}; s.frame_start, s.frame_end = {frames!r};"
        " bpy.ops.render.render(animation=True)"
    )
    if is_python(blender):
        script = f"import bpy; bpy.ops.wm.open_mainfile(filepath={str(blend)!r}); {script}"
        command = [blender, "-c", script]
    else:
        command = [blender, "-b", "--factory-startup", "-Y", str(blend), "--python-expr", script]
    subprocess.run(command, check=True, capture_output=True, timeout=300)
    return out_dir


# Runs inside Blender: argv[-3:] = the .blend, 1 to denoise, and where to save.
# Adds a compositor that inverts the render, so a farm frame that skipped the
# scene's compositing (or denoising) cannot pass for the local render.
COMPOSITOR_SCRIPT = """
import sys, bpy
src, denoise, dst = sys.argv[-3:]
bpy.ops.wm.open_mainfile(filepath=src)
scene = bpy.context.scene
scene.cycles.use_denoising = denoise == "1"
scene.render.use_compositing = True
if hasattr(scene, "compositing_node_group"):  # 5.0+
    tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
    tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
    output = tree.nodes.new("NodeGroupOutput")
    scene.compositing_node_group = tree
else:
    scene.use_nodes = True
    tree = scene.node_tree
    tree.nodes.clear()
    output = tree.nodes.new("CompositorNodeComposite")
layers = tree.nodes.new("CompositorNodeRLayers")
invert = tree.nodes.new("CompositorNodeInvert")
tree.links.new(layers.outputs["Image"], invert.inputs["Color"])
tree.links.new(invert.outputs[0], output.inputs[0])
bpy.ops.wm.save_as_mainfile(filepath=dst)
"""


def with_compositor(blend: Path, *, blender: str, denoise: bool = False) -> Path:
    """blend, saved again with an inverting compositor (and denoising when asked)."""
    script = blend.with_name("add_compositor.py")
    script.write_text(COMPOSITOR_SCRIPT)
    args = [str(blend), "1" if denoise else "0", str(blend)]
    if is_python(blender):
        command = [blender, str(script), *args]
    else:
        command = [blender, "-b", "--factory-startup", "--python", str(script), "--", *args]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return blend


@dataclass
class Versions:
    """Every version of each frame the output folder held while the job ran."""

    folder: Path
    seen: dict[str, list[bytes]] = field(default_factory=dict)
    done = False  # the job has finished: stop watching

    def watch(self, client: FarmClient, job_id: int) -> threading.Thread:
        def loop() -> None:
            last_check = 0.0
            while not self.done:
                for path in sorted(self.folder.glob("frame_*")) if self.folder.exists() else []:
                    try:
                        data = path.read_bytes()
                    except OSError:
                        continue
                    versions = self.seen.setdefault(path.name, [])
                    if not versions or versions[-1] != data:
                        versions.append(data)
                if time.monotonic() - last_check > 0.3:
                    last_check = time.monotonic()
                    status = client.job(job_id, tasks=False)["status"]
                    self.done = status in ("completed", "failed", "canceled")
                time.sleep(0.02)

        thread = threading.Thread(target=loop, name="watch-output", daemon=True)
        thread.start()
        return thread


def submit(client: FarmClient, blend: Path, out: Path, *, version: str, **settings: Any) -> int:
    hashes, _ = client.upload_project({blend.name: blend})
    job = client.submit(
        {
            "name": f"progressive {out.name}",
            "type": "blender-render-progressive",
            "blend": blend.name,
            "files": hashes,
            "blender_version": version,
            "settings": {"output": str(out / "frame_####"), **settings},
        }
    )
    return int(job["id"])


def check_against_local(
    out: Path, local: Path, reference: Path, names: list[str], label: str
) -> list[tuple[float, float]]:
    """Each farm frame is the local render's, and just as noisy; -> (farm, local) RMSEs."""
    measured = []
    for name in names:
        worst = max_difference(out / name, local / name)
        assert worst <= PIXEL_TOLERANCE, f"{label} {name}: a channel differs by {worst}/255"
        farm_error, local_error = (
            rmse(out / name, reference / name),
            rmse(local / name, reference / name),
        )
        print(
            f"{label} {name}: RMSE vs {REFERENCE_SAMPLES}-sample reference:"
            f" farm {farm_error:.5f}, local {local_error:.5f}; max difference {worst}/255"
        )
        assert abs(farm_error - local_error) <= NOISE_TOLERANCE * local_error
        measured.append((farm_error, local_error))
    return measured


def check_versions_improve(versions: Versions, reference: Path, names: list[str]) -> None:
    """Frames appeared early and each version was less noisy than the one before."""
    scratch = versions.folder.parent / "versions"
    scratch.mkdir(exist_ok=True)
    for name in names:
        seen = versions.seen.get(name, [])
        assert len(seen) >= 3, f"{name}: only {len(seen)} versions seen while the job ran"
        errors = []
        for i, data in enumerate(seen):
            copy = scratch / f"{i}-{name}"
            copy.write_bytes(data)
            errors.append(rmse(copy, reference / name))
        print(f"{name}: RMSE of each version seen: {', '.join(f'{e:.5f}' for e in errors)}")
        assert all(later < earlier for earlier, later in itertools.pairwise(errors))
        assert errors[0] > 1.3 * errors[-1]  # 4 samples against 16: about twice as noisy
        assert seen[-1] == (versions.folder / name).read_bytes()


def task_logs(client: FarmClient, job_id: int, kind: str) -> list[str]:
    return [client.task_log(t["id"]) for t in client.job(job_id)["tasks"] if t["kind"] == kind]


# ------------------------------------------------------------ Blender 3.4
@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 64x48 Cycles scene of two frames, 16 samples, composited; saved by Blender 3.4."""
    blend = make_scene(tmp_path_factory.mktemp("scene") / "shot.blend", frames=(1, 2), samples=16)
    return with_compositor(blend, blender=DEBIAN_BLENDER)


farm = farm_fixture(workers=("w1", "w2"), blender=DEBIAN_BLENDER, lease_seconds=10.0)


def test_two_frames_in_four_chunks_on_two_workers(
    farm: LocalFarm, scene: Path, tmp_path: Path
) -> None:
    blend = scene
    out = tmp_path / "out"
    client = farm.client()
    started = time.monotonic()
    job_id = submit(
        client,
        blend,
        out,
        version="3.4",
        frames="1-2",
        samples=16,
        chunks=4,
        frames_per_task=2,
        file_format="PNG",
    )
    versions = Versions(out)
    watcher = versions.watch(client, job_id)
    job = farm.wait_for_job(job_id, timeout=240)
    watcher.join(timeout=5)
    print(f"job took {time.monotonic() - started:.1f} s")
    assert job["status"] == "completed", job["status_reason"]
    names = ["frame_0001.png", "frame_0002.png"]
    assert sorted(os.listdir(out)) == names  # the finished frames only, named as locally
    assert [o["name"] for o in client.outputs(job_id)] == names
    tasks = client.job(job_id)["tasks"]
    assert len({t["worker_id"] for t in tasks}) == 2, "both workers should have worked"
    assert client.job(job_id, tasks=False)["report"] == {
        "samples": 16,
        "frame_samples": {"1": 16, "2": 16},
        "frames_finished": 2,
    }
    stored = farm.root / "coordinator" / "jobs" / str(job_id) / "outputs"
    assert (stored / "frame_0001.s0012-0016.exr").is_file()  # chunks stay on the farm
    assert (stored / "frame_0002.s0000-0016.exr").is_file()

    local = local_render(blend, tmp_path / "local", (1, 2), samples=16, blender=DEBIAN_BLENDER)
    reference = local_render(
        blend, tmp_path / "ref", (1, 2), samples=REFERENCE_SAMPLES, blender=DEBIAN_BLENDER
    )
    check_against_local(out, local, reference, names, "3.4")
    check_versions_improve(versions, reference, names)


def test_a_scene_that_is_not_cycles_is_refused_with_the_reason(
    farm: LocalFarm, scene: Path, tmp_path: Path
) -> None:
    blend = scene
    eevee = tmp_path / "eevee.blend"
    subprocess.run(
        [
            DEBIAN_BLENDER,
            "-b",
            "--factory-startup",
            str(blend),
            "--python-expr",
            "import bpy; bpy.context.scene.render.engine = 'BLENDER_EEVEE';"
            f" bpy.ops.wm.save_as_mainfile(filepath={str(eevee)!r})",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    client = farm.client()
    job_id = submit(client, eevee, tmp_path / "out", version="3.4", frames="1", samples=4, chunks=2)
    job = farm.wait_for_job(job_id, timeout=120)
    assert job["status"] == "failed"
    assert (
        "renders with BLENDER_EEVEE, and only Cycles can render a frame in sample chunks"
        in (job["status_reason"])
    ), job["status_reason"]
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------- a chunk that fails
FLAKY_BLENDER = """#!/usr/bin/env python3
# A Blender whose first render uses another seed, is uploaded, then crashes
# before it says the task is done (its task comes on stdin, as serve.py takes it).
import json, os, subprocess, sys
BLENDER, CRASHED = {blender!r}, {crashed!r}
args = sys.argv[1:]
if "--" not in args or os.path.exists(CRASHED):
    os.execv(BLENDER, [BLENDER, *args])
open(CRASHED, "w").close()
request = json.loads(sys.stdin.readline())
if request["kind"] == "render":
    with open(request["task"]) as f:
        data = json.load(f)
    data["seed"] = 4321
    with open(request["task"], "w") as f:
        json.dump(data, f)
blender = subprocess.Popen(
    [BLENDER, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
)
blender.stdin.write(json.dumps(request) + "\\n")
blender.stdin.close()
for line in blender.stdout:
    if '"event":"done"' not in line:
        print(line, end="", flush=True)
blender.wait()
print("flaky-blender: crashing after the render", flush=True)
sys.exit(3)
"""


def test_a_failed_chunk_is_rendered_again_and_never_mixed_in(
    farm: LocalFarm, tmp_path: Path
) -> None:
    # No compositor here: the merge writes the frame through a graph of its own.
    scene = make_scene(tmp_path / "plain.blend", frames=(1, 1), samples=6)
    flaky = tmp_path / "flaky-blender"
    flaky.write_text(
        FLAKY_BLENDER.format(blender=DEBIAN_BLENDER, crashed=str(tmp_path / "crashed"))
    )
    flaky.chmod(0o755)
    out = tmp_path / "out"
    child = farm.start_worker("flaky", blender=str(flaky))
    try:
        client = farm.client()
        # Three chunks to start with and three idle workers: each gets one.
        job_id = submit(client, scene, out, version="3.4", frames="1", samples=6, chunks=3)
        job = farm.wait_for_job(job_id, timeout=180)
    finally:
        child.kill()  # idle by now; a polite stop would wait out its long-poll
        farm.workers.remove(child)
    assert job["status"] == "completed", job["status_reason"]
    retried = [t for t in client.job(job_id)["tasks"] if t["attempts"] > 1]
    assert [t["kind"] for t in retried] == ["render"], "one chunk should have failed once"
    log = client.task_log(retried[0]["id"])
    assert "flaky-blender: crashing" in log
    assert "[agent] uploaded frame_0001.s" in log.split("=== attempt 2")[0]
    local = local_render(scene, tmp_path / "local", (1, 1), samples=6, blender=DEBIAN_BLENDER)
    assert sorted(os.listdir(out)) == ["frame_0001.png"]
    # The crashed attempt's chunk (another seed) would show: the frame is exactly local.
    worst = max_difference(out / "frame_0001.png", local / "frame_0001.png")
    assert worst <= PIXEL_TOLERANCE


# ---------------------------------------------------- Blender 5.0 (4.4+ path)
@pytest.mark.bpy
def test_bpy_5_workers_merge_unequal_subsets_then_denoise_and_composite(tmp_path: Path) -> None:
    python = str(BPY_PYTHON)
    blend = make_scene(tmp_path / "five.blend", frames=(1, 2), samples=14, blender=python)
    with_compositor(blend, blender=python, denoise=True)
    out = tmp_path / "out"
    with LocalFarm(root=tmp_path / "farm", lease_seconds=10.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("five-a", bpy_python=python)
        farm.start_worker("five-b", bpy_python=python)
        client = farm.client()
        # 14 samples in 4 chunks: 4, 4, 3 and 3. 5.0 writes 14 into every chunk's
        # header; unless the merge corrects it, the chunks would weigh the same.
        # The scene denoises and composites: each merge must do both as 5.0 would.
        job_id = submit(
            client, blend, out, version="5.0", frames="1-2", samples=14, chunks=4, frames_per_task=2
        )
        versions = Versions(out)
        watcher = versions.watch(client, job_id)
        job = farm.wait_for_job(job_id, timeout=300)
        watcher.join(timeout=5)
        assert job["status"] == "completed", job["status_reason"]
        logs = task_logs(client, job_id, "merge")
        assert "ViewLayer samples 14 -> 3 (4.4+ subset)" in "".join(logs)
        # The last merge still had the albedo and normal passes to guide the denoiser.
        assert "denoising with OpenImageDenoise (albedo, normal guiding passes)" in logs[-1]
    names = ["frame_0001.png", "frame_0002.png"]
    assert sorted(os.listdir(out)) == names
    local = local_render(blend, tmp_path / "local", (1, 2), samples=14, blender=python)
    reference = local_render(
        blend, tmp_path / "ref", (1, 2), samples=REFERENCE_SAMPLES, blender=python
    )
    check_against_local(out, local, reference, names, "5.0")
    check_versions_improve(versions, reference, names)
