"""A cloth simulation baked to disk (//blendcache_shot/) travels with the job:
the farm renders the baked frame exactly as a local render does, and without
the cache the same frame looks different (the cloth would hang undisturbed)."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import DEBIAN_BLENDER, reports, run_blender
from tests.support.blendgen import png_pixels
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.slow, pytest.mark.timeout(240)]

FRAME = 12

# A cloth square dropped onto a cube, baked to disk, in Blender 3.4.
CLOTH_SCENE = r"""
import os, sys, bpy, bmesh
project = sys.argv[sys.argv.index("--") + 1]
os.makedirs(project, exist_ok=True)
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 12
scene.render.engine = "CYCLES"
scene.cycles.samples, scene.cycles.use_denoising = 4, False
scene.cycles.use_adaptive_sampling = False
scene.render.resolution_x, scene.render.resolution_y = 64, 48
scene.render.filepath = "//render/f_####"

def mesh(name, build, location):
    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    build(bm)
    bm.to_mesh(me)
    ob = bpy.data.objects.new(name, me)
    ob.location = location
    scene.collection.objects.link(ob)
    return ob

mesh("Cube", lambda bm: bmesh.ops.create_cube(bm, size=1.0), (0, 0, 0))
cloth = mesh("Cloth", lambda bm: bmesh.ops.create_grid(bm, x_segments=12, y_segments=12,
                                                         size=1.2), (0, 0, 1.2))
cube = bpy.data.objects["Cube"]
cube.modifiers.new("Collision", "COLLISION")
mod = cloth.modifiers.new("Cloth", "CLOTH")
mod.point_cache.frame_start, mod.point_cache.frame_end = 1, 12
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
cam.location, cam.rotation_euler = (0, -5, 2.5), (1.15, 0, 0)
scene.collection.objects.link(cam)
scene.camera = cam
light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
light.rotation_euler = (0.6, 0.2, 0)
scene.collection.objects.link(light)
path = os.path.join(project, "shot.blend")
bpy.ops.wm.save_as_mainfile(filepath=path)  # a disk cache needs a saved file
mod.point_cache.use_disk_cache = True
bpy.ops.ptcache.bake_all(bake=True)
bpy.ops.wm.save_as_mainfile(filepath=path)
print("ADDON_TEST_DONE")
"""

SUBMIT = f"""
import json, sys, bpy, addon_utils
url, token = sys.argv[sys.argv.index("--") + 1:]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
result = bpy.ops.farm.submit_job(coordinator=url, token=token, frames="{FRAME}", chunk_size=1)
print("RESULT " + json.dumps(sorted(result)))
print("ADDON_TEST_DONE")
"""


def render_frame(blend: Path, out: Path) -> Path:
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y", str(blend)]
    command += ["-o", str(out / "f_####"), "-f", str(FRAME)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out / f"f_{FRAME:04d}.png"


def test_baked_cloth_renders_on_the_farm_as_it_does_here(tmp_path: Path) -> None:
    project = tmp_path / "project"
    made = run_blender(CLOTH_SCENE, str(project))
    assert any((project / "blendcache_shot").glob("*.bphys")), made[-2000:]
    local = render_frame(project / "shot.blend", tmp_path / "local")

    with LocalFarm(root=tmp_path / "farm", lease_seconds=5.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        out = run_blender(
            SUBMIT, farm.url, farm.token, blend=project / "shot.blend", env=legacy_env(tmp_path)
        )
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        assert json.loads(line[len("RESULT ") :]) == ["FINISHED"], reports(out)
        (job,) = farm.client().jobs()["jobs"]
        # The worker must find the cache in the job, not in the artist's folder.
        moved = tmp_path / "project-moved"
        project.rename(moved)
        farm.start_worker("w", blender=DEBIAN_BLENDER)
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        farm_frame = project / "render" / f"f_{FRAME:04d}.png"
        assert png_pixels(farm_frame) == png_pixels(local)

    # Without its cache the same frame is not the same picture.
    shutil.rmtree(moved / "blendcache_shot")
    uncached = render_frame(moved / "shot.blend", tmp_path / "uncached")
    assert png_pixels(uncached) != png_pixels(local)
