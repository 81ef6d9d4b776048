"""Simulations baked to folders of their own travel with the job.

- Blender 5.0 (the bpy module): two geometry-node simulations baked to disk,
  one in the modifier's default folder (//blendcache_shot/<object>_<modifier>),
  one in a custom folder outside the project. Submitted through the add-on,
  rendered by a --bpy-python worker after both folders have moved away, the
  frame matches a local render pixel for pixel; without the bakes it does not.
- Blender 3.4: a cloth cache read from an external folder (Cache > External)
  outside the project, the same way.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import (
    BPY_PYTHON,
    DEBIAN_BLENDER,
    reports,
    run_blender,
    run_bpy,
)
from tests.support.blendgen import png_pixels
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]

FRAME = 6

# Two cubes whose simulation zones move them a step each frame: where they are
# at frame 6 depends on frames 1-5, which only the bake remembers.
NODE_BAKES = r"""
import os, sys, bpy, bmesh
project, outside = sys.argv[1:3]
os.makedirs(project, exist_ok=True)
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0
scene = bpy.context.scene
scene.frame_start, scene.frame_end = 1, 6
scene.render.engine = "CYCLES"
scene.cycles.samples, scene.cycles.use_denoising = 4, False
scene.cycles.use_adaptive_sampling = False
scene.render.resolution_x, scene.render.resolution_y = 64, 48
scene.render.filepath = "//render/f_####"

def sim_tree(name, step):
    tree = bpy.data.node_groups.new(name, "GeometryNodeTree")
    tree.interface.new_socket("Geometry", in_out="INPUT", socket_type="NodeSocketGeometry")
    tree.interface.new_socket("Geometry", in_out="OUTPUT", socket_type="NodeSocketGeometry")
    nodes, links = tree.nodes, tree.links
    group_in, group_out = nodes.new("NodeGroupInput"), nodes.new("NodeGroupOutput")
    sim_in = nodes.new("GeometryNodeSimulationInput")
    sim_out = nodes.new("GeometryNodeSimulationOutput")
    sim_in.pair_with_output(sim_out)
    move = nodes.new("GeometryNodeTransform")
    move.inputs["Translation"].default_value = step
    links.new(group_in.outputs[0], sim_in.inputs["Geometry"])
    links.new(sim_in.outputs["Geometry"], move.inputs[0])
    links.new(move.outputs[0], sim_out.inputs["Geometry"])
    links.new(sim_out.outputs["Geometry"], group_out.inputs[0])
    return tree

def simulated_cube(name, location, step):
    me = bpy.data.meshes.new(name)
    bm = bmesh.new()
    bmesh.ops.create_cube(bm, size=0.6)
    bm.to_mesh(me)
    ob = bpy.data.objects.new(name, me)
    ob.location = location
    scene.collection.objects.link(ob)
    mod = ob.modifiers.new("Sim", "NODES")
    mod.node_group = sim_tree(name + "Tree", step)
    mod.bake_target = "DISK"  # 5.0 packs bakes into the .blend by default
    return ob, mod

left, left_mod = simulated_cube("Left", (-1.5, 0, -0.8), (0, 0, 0.3))
right, right_mod = simulated_cube("Right", (1.5, 0, 0.8), (0, 0, -0.3))
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
cam.location, cam.rotation_euler = (0, -7, 0), (1.5708, 0, 0)
scene.collection.objects.link(cam)
scene.camera = cam
sun = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
sun.rotation_euler = (0.6, 0.2, 0)
scene.collection.objects.link(sun)
path = os.path.join(project, "shot.blend")
bpy.ops.wm.save_as_mainfile(filepath=path)  # a bake on disk needs a saved file
right_mod.bakes[0].use_custom_path = True
right_mod.bakes[0].directory = os.path.join(outside, "right_bake")
for ob, mod in ((left, left_mod), (right, right_mod)):
    result = bpy.ops.object.geometry_node_bake_single(
        session_uid=ob.session_uid, modifier_name=mod.name, bake_id=mod.bakes[0].bake_id
    )
    assert result == {"FINISHED"}, result
bpy.ops.wm.save_as_mainfile(filepath=path)
print("ADDON_TEST_DONE")
"""

RENDER_BPY = r"""
import sys, bpy
blend, out, frame = sys.argv[1], sys.argv[2], int(sys.argv[3])
bpy.ops.wm.open_mainfile(filepath=blend)
scene = bpy.context.scene
scene.frame_set(frame)
scene.render.filepath = out
bpy.ops.render.render(write_still=True)
print("ADDON_TEST_DONE")
"""

# The legacy add-on, as docs/artist-guide.md installs it, enabled in the bpy module.
# as_in_the_ui: an unsaved change, copied as the UI copies it (a partial write)
SUBMIT_BPY = r"""
import json, sys, bpy, addon_utils
blend, url, token, frame, as_in_the_ui = sys.argv[1:]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
bpy.ops.wm.open_mainfile(filepath=blend)
if as_in_the_ui == "1":
    from flamenco_addon import scan
    scan.in_ui = lambda: True
    bpy.context.scene.frame_current = 2
    assert bpy.data.is_dirty
result = bpy.ops.farm.submit_job(
    coordinator=url, token=token, frames=frame, chunk_size=1, results="COORDINATOR"
)
print("RESULT " + json.dumps(sorted(result)))
print("ADDON_TEST_DONE")
"""


@pytest.mark.bpy
@pytest.mark.parametrize("as_in_the_ui", [False, True], ids=["script", "ui-copy"])
def test_geometry_node_bakes_render_on_the_farm_as_they_do_here(
    tmp_path: Path, as_in_the_ui: bool
) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    run_bpy(NODE_BAKES, str(project), str(outside))
    assert any((project / "blendcache_shot" / "Left_Sim").rglob("*.blob"))
    assert any((outside / "right_bake").rglob("*.blob"))
    local = tmp_path / "local.png"
    run_bpy(RENDER_BPY, str(project / "shot.blend"), str(local), str(FRAME))

    with LocalFarm(root=tmp_path / "farm", lease_seconds=10.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        out = run_bpy(
            SUBMIT_BPY,
            str(project / "shot.blend"),
            farm.url,
            farm.token,
            str(FRAME),
            "1" if as_in_the_ui else "0",
            env=legacy_env(tmp_path),
        )
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        assert json.loads(line[len("RESULT ") :]) == ["FINISHED"], reports(out)
        (job,) = farm.client().jobs()["jobs"]
        # The worker must find both bakes in the job, not where the artist keeps them.
        moved, outside_moved = tmp_path / "project-moved", tmp_path / "outside-moved"
        project.rename(moved)
        outside.rename(outside_moved)
        farm.start_worker("w", bpy_python=str(BPY_PYTHON))
        done = farm.wait_for_job(job["id"], timeout=180)
        assert done["status"] == "completed", farm.describe()
        farm_frame = project / "render" / f"f_{FRAME:04d}.png"
        assert png_pixels(farm_frame) == png_pixels(local)

    # Without the bakes the simulations start over at frame 6: another picture.
    shutil.rmtree(moved / "blendcache_shot")
    shutil.rmtree(outside_moved / "right_bake")
    unbaked = tmp_path / "unbaked.png"
    run_bpy(RENDER_BPY, str(moved / "shot.blend"), str(unbaked), str(FRAME))
    assert png_pixels(unbaked) != png_pixels(local)


# A cloth square dropped onto a cube; its cache is read from a folder outside
# the project (Physics > Cloth > Cache > External), where it was baked.
EXTERNAL_CLOTH = r"""
import os, sys, shutil, bpy, bmesh
project, outside = sys.argv[sys.argv.index("--") + 1:]
os.makedirs(project, exist_ok=True)
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0
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
bpy.data.objects["Cube"].modifiers.new("Collision", "COLLISION")
mod = cloth.modifiers.new("Cloth", "CLOTH")
cache = mod.point_cache
cache.frame_start, cache.frame_end = 1, 12
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
cam.location, cam.rotation_euler = (0, -5, 2.5), (1.15, 0, 0)
scene.collection.objects.link(cam)
scene.camera = cam
light = bpy.data.objects.new("Sun", bpy.data.lights.new("Sun", "SUN"))
light.rotation_euler = (0.6, 0.2, 0)
scene.collection.objects.link(light)
path = os.path.join(project, "shot.blend")
bpy.ops.wm.save_as_mainfile(filepath=path)
cache.use_disk_cache = True
cache.name = "drape"
bpy.ops.ptcache.bake_all(bake=True)
# Move the baked files to a folder of their own and read them from there.
folder = os.path.join(outside, "cloth_cache")
shutil.copytree(os.path.join(project, "blendcache_shot"), folder)
shutil.rmtree(os.path.join(project, "blendcache_shot"))
cache.use_external = True
cache.filepath = folder
bpy.ops.wm.save_as_mainfile(filepath=path)
print("ADDON_TEST_DONE")
"""

SUBMIT_LEGACY = """
import json, sys, bpy, addon_utils
url, token = sys.argv[sys.argv.index("--") + 1:]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
result = bpy.ops.farm.submit_job(coordinator=url, token=token, frames="12", chunk_size=1)
print("RESULT " + json.dumps(sorted(result)))
print("ADDON_TEST_DONE")
"""


def render_34(blend: Path, out: Path, frame: int) -> Path:
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y", str(blend)]
    command += ["-o", str(out / "f_####"), "-f", str(frame)]
    subprocess.run(command, check=True, capture_output=True, timeout=120)
    return out / f"f_{frame:04d}.png"


@pytest.mark.blender
def test_external_point_cache_renders_on_the_farm_as_it_does_here(tmp_path: Path) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    made = run_blender(EXTERNAL_CLOTH, str(project), str(outside))
    assert any((outside / "cloth_cache").glob("drape_*.bphys")), made[-2000:]
    assert not (project / "blendcache_shot").exists()
    local = render_34(project / "shot.blend", tmp_path / "local", 12)

    with LocalFarm(root=tmp_path / "farm", lease_seconds=10.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        out = run_blender(
            SUBMIT_LEGACY,
            farm.url,
            farm.token,
            blend=project / "shot.blend",
            env=legacy_env(tmp_path),
        )
        line = next(x for x in out.splitlines() if x.startswith("RESULT "))
        assert json.loads(line[len("RESULT ") :]) == ["FINISHED"], reports(out)
        (job,) = farm.client().jobs()["jobs"]
        moved = tmp_path / "outside-moved"
        outside.rename(moved)
        farm.start_worker("w", blender=DEBIAN_BLENDER)
        done = farm.wait_for_job(job["id"], timeout=120)
        assert done["status"] == "completed", farm.describe()
        assert png_pixels(project / "render" / "f_0012.png") == png_pixels(local)

    # Without its cache folder the cloth hangs undisturbed: another picture.
    uncached = render_34(project / "shot.blend", tmp_path / "uncached", 12)
    assert png_pixels(uncached) != png_pixels(local)
