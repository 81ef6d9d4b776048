"""A test project whose .blend reads files of several kinds: a relative texture
(blendgen's box), a linked library (a collection from lib/set.blend) and an image
sequence (seq/plate_0001.png ..., one colour per frame, on a plane).

Built with the same Blender that will render it (blendgen's rule: a file saved
by 5.0 does not open in 3.4).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.support.blendgen import DEBIAN_BLENDER, make_scene, run_script

# Runs inside Blender with a JSON file of arguments: writes the library, the
# sequence's PNGs, then opens the scene and links both in.
_SCRIPT = r"""
import json, os, sys
import bpy

args_path = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[1]
with open(args_path, encoding="utf-8") as f:
    args = json.load(f)


def quad(name, size, location, mat):
    s = size / 2
    mesh = bpy.data.meshes.new(name)
    mesh.from_pydata([(-s, 0, -s), (s, 0, -s), (s, 0, s), (-s, 0, s)], [], [(0, 1, 2, 3)])
    mesh.materials.append(mat)
    obj = bpy.data.objects.new(name, mesh)
    obj.location = location
    return obj


def flat(name, color):
    mat = bpy.data.materials.new(name)
    mat.use_nodes = True
    bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
    bsdf.inputs["Base Color"].default_value = color
    return mat


# 1. The library: a collection "LibSet" holding one green panel.
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0
coll = bpy.data.collections.new("LibSet")
bpy.context.scene.collection.children.link(coll)
coll.objects.link(quad("LibPanel", 1.2, (0.0, 1.0, 1.6), flat("LibGreen", (0.1, 0.8, 0.2, 1))))
os.makedirs(os.path.dirname(args["library"]), exist_ok=True)
bpy.ops.wm.save_as_mainfile(filepath=args["library"], compress=False)

# 2. The sequence: one solid colour per frame.
for n, path in enumerate(args["sequence"]):
    image = bpy.data.images.new(f"plate{n}", 4, 4)
    shade = n / max(1, len(args["sequence"]) - 1)
    image.pixels = [shade, 0.2, 1.0 - shade, 1.0] * 16
    os.makedirs(os.path.dirname(path), exist_ok=True)
    image.filepath_raw = path
    image.file_format = "PNG"
    image.save()

# 3. The scene: link the collection and add a plane showing the sequence.
bpy.ops.wm.open_mainfile(filepath=args["blend"], load_ui=False)
scene = bpy.context.scene
with bpy.data.libraries.load(args["library"], link=True, relative=True) as (src, dst):
    dst.collections = ["LibSet"]
scene.collection.children.link(dst.collections[0])

plate = bpy.data.images.load(args["sequence"][0])
plate.source = "SEQUENCE"
mat = flat("Plate", (1, 1, 1, 1))
node = mat.node_tree.nodes.new("ShaderNodeTexImage")
node.image = plate
node.image_user.frame_start = 1
node.image_user.frame_duration = len(args["sequence"])
node.image_user.use_auto_refresh = True
bsdf = next(n for n in mat.node_tree.nodes if n.type == "BSDF_PRINCIPLED")
mat.node_tree.links.new(node.outputs["Color"], bsdf.inputs["Base Color"])
scene.collection.objects.link(quad("Plate", 1.2, (-1.6, 1.0, 1.6), mat))
plate.filepath = bpy.path.relpath(plate.filepath)
bpy.ops.wm.save_as_mainfile(filepath=args["blend"], compress=False)
print("BLENDGEN_DEPS_SAVED", args["blend"])
"""


@dataclass(frozen=True)
class Project:
    root: Path  # the project folder
    blend: Path  # root/shot.blend
    texture: Path  # root/tex/checker.png, relative in the .blend
    library: Path  # root/lib/set.blend, linked relative
    sequence: tuple[Path, ...]  # root/seq/plate_0001.png ..., relative in the .blend

    def files(self) -> list[Path]:
        return [self.blend, self.texture, self.library, *self.sequence]


def make_project(
    root: str | os.PathLike[str],
    *,
    blender: str | os.PathLike[str] = DEBIAN_BLENDER,
    frames: tuple[int, int] = (1, 3),
    timeout: float = 120,
) -> Project:
    """A project at root with a texture, a linked library and an image sequence."""
    folder = Path(root).resolve()
    count = frames[1] - frames[0] + 1
    project = Project(
        root=folder,
        blend=folder / "shot.blend",
        texture=folder / "tex" / "checker.png",
        library=folder / "lib" / "set.blend",
        sequence=tuple(folder / "seq" / f"plate_{n:04d}.png" for n in range(1, count + 1)),
    )
    make_scene(project.blend, blender=blender, frames=frames, texture=project.texture)
    args = {
        "blend": str(project.blend),
        "library": str(project.library),
        "sequence": [str(p) for p in project.sequence],
    }
    proc, command, output = run_script(blender, _SCRIPT, args, timeout=timeout)
    if proc.returncode != 0 or "BLENDGEN_DEPS_SAVED" not in output:
        raise RuntimeError(f"blendgen_deps failed ({proc.returncode}): {command}\n{output[-3000:]}")
    return project
