"""Makes small test scenes with a real Blender (the binary, or a Python with bpy).

Scenes are built through bpy's data API (no operators but save) so the same
script runs on Debian's 3.4 binary and on the bpy 5.0 module. A file saved by
5.0 cannot be opened by 3.4; make one per Blender you test.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tests.support.components import BPY_PYTHON as BPY_PYTHON
from tests.support.components import DEBIAN_BLENDER as DEBIAN_BLENDER
from tests.support.components import REPO as REPO

# Runs inside Blender: argv after "--" (binary) or argv[1] (module) is a JSON file
# with the make_scene arguments.
_SCRIPT = r'''
import json, os, sys
import bpy
import bmesh  # the bpy module only provides bmesh once bpy is imported

args_path = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[1]
with open(args_path, encoding="utf-8") as f:
    args = json.load(f)

bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0  # no .blend1 backups
scene = bpy.context.scene
scene.name = args["scene_name"]
scene.frame_start, scene.frame_end = args["frames"]
render = scene.render
render.engine = "CYCLES"
render.resolution_x, render.resolution_y = args["resolution"]
render.resolution_percentage = 100
if args["file_format"] == "FFMPEG" and hasattr(render.image_settings, "media_type"):
    render.image_settings.media_type = "VIDEO"  # 5.0+: formats are listed per media type
render.image_settings.file_format = args["file_format"]
render.filepath = "//render/frame_"
cycles = scene.cycles
cycles.device = "CPU"
cycles.samples = args["samples"]
cycles.use_adaptive_sampling = False
cycles.use_denoising = False  # Debian's build has no OpenImageDenoise
cycles.seed = 1234
cycles.use_animated_seed = False

world = bpy.data.worlds.new("World")
world.color = (0.05, 0.05, 0.08)
scene.world = world


def mesh_object(name, build, location, material=None):
    mesh = bpy.data.meshes.new(name)
    bm = bmesh.new()
    build(bm)
    bm.to_mesh(mesh)
    bm.free()
    if material is not None:
        mesh.materials.append(material)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    scene.collection.objects.link(obj)
    return obj


def material(name, color, texture=None):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = color
    if texture is not None:
        node = mat.node_tree.nodes.new("ShaderNodeTexImage")
        node.image = bpy.data.images.load(texture)
        mat.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
    return mat


def write_texture(path):
    """A 16x16 checker PNG, written by Blender itself (no numpy here)."""
    size = 16
    image = bpy.data.images.new("checker", size, size)
    pixels = []
    for y in range(size):
        for x in range(size):
            on = (x // 4 + y // 4) % 2
            pixels += [0.9, 0.2, 0.1, 1.0] if on else [0.1, 0.3, 0.9, 1.0]
    image.pixels = pixels
    image.filepath_raw = path
    image.file_format = "PNG"
    image.save()
    bpy.data.images.remove(image)


texture = args["texture"]
if texture is not None:
    os.makedirs(os.path.dirname(texture), exist_ok=True)
    if not os.path.exists(texture):
        write_texture(texture)

def grid(bm):
    bmesh.ops.create_grid(bm, x_segments=1, y_segments=1, size=4)


def cube(bm):
    bmesh.ops.create_cube(bm, size=1.0)


def sphere(bm):
    bmesh.ops.create_uvsphere(bm, u_segments=16, v_segments=8, radius=0.5)


mesh_object("Floor", grid, (0, 0, 0), material("Floor", (0.6, 0.6, 0.6, 1.0)))
box = mesh_object("Box", cube, (-1.0, 0, 0.5), material("Box", (0.8, 0.3, 0.1, 1.0), texture))
ball = mesh_object("Ball", sphere, (1.0, 0, 0.5), material("Ball", (0.1, 0.4, 0.8, 1.0)))
first, last = args["frames"]
box.location.z = 0.5
box.keyframe_insert("location", index=2, frame=first)
box.location.z = 2.0
box.keyframe_insert("location", index=2, frame=max(last, first + 1))
box.location.z = 0.5

cam_data = bpy.data.cameras.new("Camera")
camera = bpy.data.objects.new("Camera", cam_data)
camera.location = (0, -6, 3)
camera.rotation_euler = (1.15, 0, 0)
scene.collection.objects.link(camera)
scene.camera = camera
other_cam = bpy.data.objects.new("SideCamera", bpy.data.cameras.new("SideCamera"))
other_cam.location = (6, 0, 2)
other_cam.rotation_euler = (1.3, 0, 1.5708)
scene.collection.objects.link(other_cam)

light_data = bpy.data.lights.new("Sun", "SUN")
light_data.energy = 3.0
light = bpy.data.objects.new("Sun", light_data)
light.rotation_euler = (0.6, 0.2, 0.3)
scene.collection.objects.link(light)

if args["relative_texture"]:
    # "//" paths are relative to the .blend, which Blender only knows once saved.
    bpy.ops.wm.save_as_mainfile(filepath=args["path"], compress=False)
    for image in bpy.data.images:
        if image.filepath:
            image.filepath = bpy.path.relpath(image.filepath)
bpy.ops.wm.save_as_mainfile(filepath=args["path"], compress=False)
print("BLENDGEN_SAVED", args["path"])
'''


def is_python(executable: str | os.PathLike[str]) -> bool:
    """A Python with the bpy module (runs scripts directly) rather than the binary."""
    return Path(executable).name.startswith("python")


def make_scene(
    path: str | os.PathLike[str],
    *,
    blender: str | os.PathLike[str] = DEBIAN_BLENDER,
    frames: tuple[int, int] = (1, 6),
    texture: str | os.PathLike[str] | None = None,
    relative_texture: bool = True,
    scene_name: str = "Scene",
    samples: int = 4,
    resolution: tuple[int, int] = (64, 48),
    file_format: str = "PNG",
    timeout: float = 120,
) -> Path:
    """Saves a tiny Cycles scene at path and returns it (absolute).

    texture: a PNG the box's material uses; written by Blender when missing,
    stored relative to the .blend when relative_texture.
    """
    target = Path(path).resolve()
    target.parent.mkdir(parents=True, exist_ok=True)
    args = {
        "path": str(target),
        "frames": list(frames),
        "texture": str(Path(texture).resolve()) if texture is not None else None,
        "relative_texture": relative_texture,
        "scene_name": scene_name,
        "samples": samples,
        "resolution": list(resolution),
        "file_format": file_format,
    }
    proc, command, output = run_script(blender, _SCRIPT, args, timeout=timeout)
    if proc.returncode != 0 or not target.is_file():
        raise RuntimeError(f"blendgen failed ({proc.returncode}): {command}\n{output[-3000:]}")
    return target


def run_script(
    blender: str | os.PathLike[str], script_text: str, args: dict[str, Any], *, timeout: float
) -> tuple[subprocess.CompletedProcess[bytes], list[str], str]:
    """Run a Python script in Blender (or a Python with bpy) with `args` in a JSON
    file as its argument; -> (the process, its command, stdout and stderr as text)."""
    with tempfile.TemporaryDirectory(prefix="blendgen-") as tmp:
        script = Path(tmp, "script.py")
        script.write_text(script_text, encoding="utf-8")
        args_file = Path(tmp, "args.json")
        args_file.write_text(json.dumps(args), encoding="utf-8")
        command = _command(blender, script, args_file)
        proc = subprocess.run(command, capture_output=True, timeout=timeout, check=False)
    output = proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
    return proc, command, output


def _command(blender: str | os.PathLike[str], script: Path, args_file: Path) -> list[str]:
    if is_python(blender):
        return [str(blender), str(script), str(args_file)]
    return [
        str(blender),
        "-b",
        "--factory-startup",
        "--python-exit-code",
        "1",
        "--python",
        str(script),
        "--",
        str(args_file),
    ]


def png_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """(width, height) from a PNG's header."""
    header = Path(path).read_bytes()[:24]
    if header[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG")
    width, height = struct.unpack(">II", header[16:24])
    return width, height


def png_pixels(path: str | os.PathLike[str]) -> bytes:
    """The raw 8-bit pixel rows of a non-interlaced RGB/RGBA PNG (what Blender writes)."""
    data = Path(path).read_bytes()
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            if depth != 8 or color not in (2, 6) or body[12] != 0:
                raise ValueError(f"{path}: only 8-bit RGB/RGBA non-interlaced PNGs")
            channels = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    return _unfilter(zlib.decompress(idat), width * channels, height, channels)


def _unfilter(raw: bytes, stride: int, height: int, bpp: int) -> bytes:
    rows: list[bytearray] = []
    previous = bytearray(stride)
    for y in range(height):
        kind = raw[y * (stride + 1)]
        row = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for i in range(stride):
            left = row[i - bpp] if i >= bpp else 0
            up, up_left = previous[i], previous[i - bpp] if i >= bpp else 0
            if kind == 1:
                row[i] = (row[i] + left) & 0xFF
            elif kind == 2:
                row[i] = (row[i] + up) & 0xFF
            elif kind == 3:
                row[i] = (row[i] + (left + up) // 2) & 0xFF
            elif kind == 4:
                row[i] = (row[i] + _paeth(left, up, up_left)) & 0xFF
        rows.append(row)
        previous = row
    return b"".join(rows)


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _main(argv: Sequence[str]) -> None:
    """python -m tests.support.blendgen OUT.blend [BLENDER]: make a scene by hand."""
    blender = argv[2] if len(argv) > 2 else DEBIAN_BLENDER
    print(make_scene(argv[1], blender=blender, texture=Path(argv[1]).parent / "tex" / "c.png"))


if __name__ == "__main__":
    _main(sys.argv)
