"""Helpers for the add-on tests: building the extension, running Blender in subprocesses.

Blender (the binary or the bpy module) always runs in a child process: the
bpy module can crash at exit, and a test must see that as the child's exit
code, not as its own death.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.support.components import BPY_PYTHON as BPY_PYTHON
from tests.support.components import DEBIAN_BLENDER as DEBIAN_BLENDER
from tests.support.components import REPO as REPO

BUILD_SCRIPT = REPO / "scripts" / "build_extension.py"
WHEEL_CACHE = REPO / "build" / "wheels"
# Marks the line the child prints when its script got to the end.
DONE = "ADDON_TEST_DONE"


def build_extension(out: Path, platform: str = "linux-x64") -> Path:
    """The extension zip for one platform, built like `make extension` builds it."""
    subprocess.run(
        [sys.executable, str(BUILD_SCRIPT), "--platform", platform, "--out", str(out)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    (zip_path,) = out.glob("*.zip")
    return zip_path


def site_packages() -> str:
    """The dev venv's site-packages: aiohttp, zeroconf, requests for Python 3.11."""
    import aiohttp

    return str(Path(aiohttp.__file__).parent.parent)


def run_bpy(
    script: str, *args: str, env: dict[str, str] | None = None, timeout: float = 240
) -> str:
    """Run `script` with the bpy 5.0.1 module in a child Python; returns its output."""
    return _run([str(BPY_PYTHON), "-c", textwrap.dedent(script), *args], env, timeout)


def run_blender(
    script: str,
    *args: str,
    blend: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 240,
) -> str:
    """Run `script` in Debian's Blender 3.4 with `-b --python-expr`, PYTHONPATH honoured."""
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-use-system-env"]
    command += [str(blend)] if blend else []
    command += ["--python-exit-code", "1", "--python-expr", textwrap.dedent(script)]
    return _run([*command, "--", *args], env, timeout)


def _run(command: list[str], env: dict[str, str] | None, timeout: float) -> str:
    full_env = dict(os.environ)
    full_env.update(env or {})
    proc = subprocess.run(command, capture_output=True, timeout=timeout, env=full_env, check=False)
    out = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    if DONE not in out:
        raise AssertionError(f"Blender child failed (exit {proc.returncode}):\n{out[-4000:]}")
    return out


def reports(output: str) -> list[str]:
    """The lines the operators reported ("Error: ...", "Info: ...")."""
    return [
        line
        for line in output.splitlines()
        if line.startswith(("Error:", "Info:", "Warning:", "farm:"))
    ]


# A library .blend with one textured object, and a main file that links it,
# uses a relative texture, an absolute texture outside the project and an
# image sequence. Runs in Blender 3.4 (`-b --python-expr`), bpy data API only.
PACKING_SCENE = r"""
import os, sys, bpy
args = sys.argv[sys.argv.index("--") + 1:]
project, outside = args[0], args[1]

def checker(path, a, b):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img = bpy.data.images.new(os.path.basename(path), 8, 8)
    px = []
    for y in range(8):
        for x in range(8):
            px += a if (x // 2 + y // 2) % 2 else b
    img.pixels = px
    img.filepath_raw = path
    img.file_format = "PNG"
    img.save()
    bpy.data.images.remove(img)

def textured(name, image, loc):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    nodes = mat.node_tree.nodes
    bsdf = next(n for n in nodes if n.type == "BSDF_PRINCIPLED")
    tex = nodes.new("ShaderNodeTexImage")
    tex.image = image
    mat.node_tree.links.new(tex.outputs["Color"], bsdf.inputs["Base Color"])
    mesh = bpy.data.meshes.new(name)
    s = 0.6
    mesh.from_pydata([(-s, 0, -s), (s, 0, -s), (s, 0, s), (-s, 0, s)], [], [(0, 1, 2, 3)])
    mesh.uv_layers.new()
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = loc
    return obj, tex

def base_scene():
    bpy.ops.wm.read_factory_settings(use_empty=True)
    bpy.context.preferences.filepaths.save_version = 0
    scene = bpy.context.scene
    scene.render.engine = "CYCLES"
    scene.cycles.samples = 2
    scene.cycles.use_denoising = False
    scene.cycles.use_adaptive_sampling = False
    scene.cycles.seed = 7
    scene.render.resolution_x, scene.render.resolution_y = 64, 48
    scene.render.resolution_percentage = 100
    world = bpy.data.worlds.new("W")
    world.color = (1, 1, 1)
    scene.world = world
    return scene

# -- the library, outside the project, with a texture next to it
lib_dir = os.path.join(outside, "lib")
checker(os.path.join(lib_dir, "tex", "lib.png"), [0.9, 0.9, 0.1, 1], [0.1, 0.1, 0.1, 1])
scene = base_scene()
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(lib_dir, "props.blend"))
obj, _ = textured("LibCard", bpy.data.images.load("//tex/lib.png"), (0, 0, 0))
scene.collection.objects.link(obj)
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(lib_dir, "props.blend"))

# -- the shot
checker(os.path.join(project, "tex", "rel.png"), [0.9, 0.1, 0.1, 1], [0.1, 0.1, 0.9, 1])
checker(os.path.join(outside, "abs.png"), [0.1, 0.9, 0.1, 1], [0.9, 0.1, 0.9, 1])
for i, c in enumerate(([1, 0, 0, 1], [0, 1, 0, 1], [0, 0, 1, 1])):
    checker(os.path.join(project, "seq", f"s_{i + 1:04d}.png"), c, [1, 1, 1, 1])
scene = base_scene()
scene.frame_start, scene.frame_end = 1, 2
shot = os.path.join(project, "shot.blend")
bpy.ops.wm.save_as_mainfile(filepath=shot)
library = os.path.join(lib_dir, "props.blend")
with bpy.data.libraries.load(library, link=True, relative=True) as (src, dst):
    dst.objects = ["LibCard"]
for o in dst.objects:
    scene.collection.objects.link(o)
    inst = o
rel, _ = textured("Rel", bpy.data.images.load("//tex/rel.png"), (-1.3, 0, 0))
absolute, _ = textured("Abs", bpy.data.images.load(os.path.join(outside, "abs.png")), (1.3, 0, 0))
seq_img = bpy.data.images.load("//seq/s_0001.png")
seq_img.source = "SEQUENCE"
seq, tex = textured("Seq", seq_img, (0, 0, 1.3))
tex.image_user.frame_duration = 3
tex.image_user.use_auto_refresh = True
for o in (rel, absolute, seq):
    scene.collection.objects.link(o)
cam = bpy.data.objects.new("Cam", bpy.data.cameras.new("Cam"))
cam.location = (0, -7, 0.6)
cam.rotation_euler = (1.5708, 0, 0)
scene.collection.objects.link(cam)
scene.camera = cam
scene.render.filepath = "//render/f_####"
bpy.ops.wm.save_as_mainfile(filepath=shot)
print("ADDON_TEST_DONE")
"""
