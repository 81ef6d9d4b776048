"""Compositor File Output nodes come home: `submit` (the add-on's tracer in a
headless Blender 3.4 lists the nodes), a real coordinator and a worker started
with --allow-scripts (the case that used to let nodes write where they point)
on loopback; the files land where the node points on the artist's side, named
as a local `blender -b -a` names them, and nothing is written on the worker
outside its task folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import parse_setting
from tests.e2e.test_dependencies import cli
from tests.e2e.test_render import assert_same_pixels, local_render
from tests.support.blendgen import DEBIAN_BLENDER, make_scene, run_script
from tests.support.localfarm import LocalFarm, farm_fixture

pytestmark = [pytest.mark.blender, pytest.mark.slow]

farm = farm_fixture(workers=("w1",), blender=DEBIAN_BLENDER, worker_args=("--allow-scripts",))

# Runs in Blender 3.4: one File Output node writing two passes to //passes/: the
# image (the node's PNG) and the normal pass under a sub-folder, in its own
# format (an RGB PNG, the node writing RGBA) with three digits; a multilayer EXR
# node (one file per frame, named from its base path); a muted node that must stay silent.
_ADD_NODES = r"""
import json, sys
import bpy
args = json.load(open(sys.argv[sys.argv.index("--") + 1]))
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
scene.view_layers[0].use_pass_normal = True
scene.use_nodes = True
tree = scene.node_tree
layers = next(n for n in tree.nodes if n.type == "R_LAYERS")
node = tree.nodes.new("CompositorNodeOutputFile")
node.name = "passes"
node.base_path = "//passes/"
node.format.file_format = "PNG"
node.file_slots[0].path = "image_"
node.file_slots.new("normal/N_###")
slot = node.file_slots[1]
slot.use_node_format = False
slot.format.file_format = "PNG"
slot.format.color_mode = "RGB"
tree.links.new(layers.outputs["Image"], node.inputs[0])
tree.links.new(layers.outputs["Normal"], node.inputs[1])
layers_node = tree.nodes.new("CompositorNodeOutputFile")
layers_node.name = "layers"
layers_node.base_path = "//passes/ml_"
layers_node.format.file_format = "OPEN_EXR_MULTILAYER"
tree.links.new(layers.outputs["Image"], layers_node.inputs[0])
muted = tree.nodes.new("CompositorNodeOutputFile")
muted.name = "muted"
muted.base_path = args["spy"]
muted.mute = True
tree.links.new(layers.outputs["Image"], muted.inputs[0])
bpy.ops.wm.save_mainfile()
"""


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("shot")
    blend = make_scene(root / "shot.blend", frames=(1, 2), samples=2)
    args = {"blend": str(blend), "spy": str(root / "spy") + "/"}
    proc, command, output = run_script(DEBIAN_BLENDER, _ADD_NODES, args, timeout=120)
    assert proc.returncode == 0, f"{command}\n{output[-2000:]}"
    return blend


def files_under(folder: Path) -> list[str]:
    return sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file())


def test_file_output_passes_land_next_to_the_blend_as_a_local_render_names_them(
    farm: LocalFarm, shot: Path, tmp_path: Path
) -> None:
    result = cli(
        farm,
        *("submit", str(shot), "--frames", "1-2", "--chunk-size", "1"),  # 2 tasks, 1 warm Blender
        *("--output", str(tmp_path / "farm" / "frame_####"), "--wait", "--timeout", "120"),
    )
    assert result.returncode == 0, result.stderr
    job = farm.client().job(int(result.stdout.split()[0]))
    assert job["status"] == "completed", job["status_reason"]
    listed = parse_setting(job["settings"]["file_outputs"])
    passes = shot.parent / "passes"
    assert [(o.node, o.slot, o.path) for o in listed] == [
        ("passes", 0, f"{passes}/image_"),
        ("passes", 1, f"{passes}/normal/N_###"),
        ("layers", None, f"{passes}/ml_"),
    ]

    local_copy = tmp_path / "local" / "shot.blend"
    local_copy.parent.mkdir()
    shutil.copy(shot, local_copy)
    local_render(local_copy, tmp_path / "local" / "render", (1, 2))
    local_passes = local_copy.parent / "passes"
    names = files_under(passes)
    assert (
        names
        == files_under(local_passes)
        == [
            "image_0001.png",
            "image_0002.png",
            "ml_0001.exr",
            "ml_0002.exr",
            "normal/N_001.png",
            "normal/N_002.png",
        ]
    )
    for name in names:
        if name.endswith(".png"):
            assert_same_pixels(passes / name, local_passes / name)
    assert sorted(os.listdir(tmp_path / "farm")) == ["frame_0001.png", "frame_0002.png"]

    # On the worker: the node wrote into its task folder, under the farm's names
    # (the agent uploads nothing from elsewhere), and nowhere the .blend points
    # (//passes/ next to its copy of the project, the muted node's folder).
    client = farm.client()
    uploaded = sorted(o["name"] for o in client.outputs(job["id"]))
    assert uploaded == [
        "fileout1-0001.png",
        "fileout1-0002.png",
        "fileout2-0001.png",
        "fileout2-0002.png",
        "fileout3-0001.exr",
        "fileout3-0002.exr",
        "frame_0001.png",
        "frame_0002.png",
    ]
    worker = farm.root / "w1"
    assert not (worker / "jobs" / str(job["id"]) / "project" / "passes").exists()
    assert not (shot.parent / "spy").exists()
    log = "".join(client.task_log(task["id"]) for task in job["tasks"])
    saved = [
        line.split("Saved:", 1)[1].strip(" '") for line in log.splitlines() if "Saved:" in line
    ]
    assert len(saved) == 6, log  # 3.4 names each file it writes, multilayer EXRs aside
    for path in saved:
        assert Path(path).is_relative_to(worker), f"the worker wrote {path}"


_RELATIVE_NODE = r"""
import json, sys
import bpy
args = json.load(open(sys.argv[sys.argv.index("--") + 1]))
bpy.ops.wm.open_mainfile(filepath=args["blend"])
bpy.context.scene.node_tree.nodes["passes"].base_path = "passes/"
bpy.ops.wm.save_as_mainfile(filepath=args["copy"])
"""


def test_a_node_the_farm_cannot_bring_home_is_refused_before_upload(
    farm: LocalFarm, shot: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "relative.blend"
    args = {"blend": str(shot), "copy": str(copy)}
    proc, command, output = run_script(DEBIAN_BLENDER, _RELATIVE_NODE, args, timeout=120)
    assert proc.returncode == 0, f"{command}\n{output[-2000:]}"
    jobs_before = farm.client().jobs()["total"]
    result = cli(farm, "submit", str(copy), "--frames", "1", "--output", str(tmp_path / "f_"))
    assert result.returncode == 2, result.stderr
    assert result.stderr.splitlines()[-1] == (
        "error: relative.blend: the compositor's File Output node 'passes', input 'image_':"
        " output path 'passes/image_' is relative to Blender's working directory; use '//'"
        " (the .blend's folder) or an absolute path"
    )
    assert "upload" not in result.stderr
    assert farm.client().jobs()["total"] == jobs_before
