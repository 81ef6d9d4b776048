"""File Output nodes in bpy 5.0.1, whose node API changed (`directory`, `file_name`,
`file_output_items`): the add-on's reader and core.fileoutputs name the files as
a local 5.0 render does, and the runner writes them into the task folder only
(the 3.4 binary through a whole farm: tests/e2e/test_file_outputs.py)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import destination, farm_name, resolve_nodes
from tests.support.blendgen import BPY_PYTHON, REPO, make_scene, run_script
from tests.worker_agent.test_missing_inputs import run_runner
from worker_agent.events import Done, FrameSaved

pytestmark = [pytest.mark.blender, pytest.mark.bpy]

# Runs in bpy 5.0: two passes (the image, the alpha as an 8-bit RGB PNG with three
# digits, its "/" made "_" by 5.0) to //passes/pre_*, one multilayer EXR node, and a
# muted node; lists what the add-on's reader sees, then renders frame 2 locally.
_SCENE = r"""
import json, sys
import bpy
args = json.load(open(sys.argv[1]))
sys.path.insert(0, args["addon"])
from fileoutput_nodes import file_output_nodes
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
tree = bpy.data.node_groups.new("Compositing", "CompositorNodeTree")
scene.compositing_node_group = tree
layers = tree.nodes.new("CompositorNodeRLayers")
node = tree.nodes.new("CompositorNodeOutputFile")
node.name = "passes"
node.directory = "//passes/"
node.file_name = "pre_"
node.format.media_type = "IMAGE"
node.format.file_format = "PNG"
node.file_output_items.new("RGBA", "image_")
alpha = node.file_output_items.new("FLOAT", "alpha/A_###")  # 5.0 makes it alpha_A_###
alpha.override_node_format = True
alpha.format.media_type = "IMAGE"
alpha.format.file_format = "PNG"
alpha.format.color_mode = "RGB"
node.file_output_items.new("RGBA", "unlinked")
tree.links.new(layers.outputs["Image"], node.inputs[0])
tree.links.new(layers.outputs["Alpha"], node.inputs[1])
multi = tree.nodes.new("CompositorNodeOutputFile")
multi.name = "layers"
multi.directory = "//passes/"
multi.file_name = "ml_"
multi.file_output_items.new("RGBA", "beauty")
tree.links.new(layers.outputs["Image"], multi.inputs[0])
muted = tree.nodes.new("CompositorNodeOutputFile")
muted.name = "muted"
muted.directory = args["spy"]
muted.mute = True
muted.file_output_items.new("RGBA", "x")
tree.links.new(layers.outputs["Image"], muted.inputs[0])
bpy.ops.wm.save_mainfile()
json.dump(file_output_nodes(scene), open(args["nodes"], "w"))
scene.frame_start = scene.frame_end = 2
scene.render.filepath = args["render"]
bpy.ops.render.render(animation=True)
"""


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict[str, object]]]:
    root = tmp_path_factory.mktemp("fo50")
    blend = make_scene(root / "shot.blend", blender=BPY_PYTHON, frames=(1, 2), samples=1)
    args = {
        "blend": str(blend),
        "addon": str(REPO / "flamenco_addon"),
        "spy": str(root / "spy") + "/",
        "nodes": str(root / "nodes.json"),
        "render": str(root / "render" / "f_"),
    }
    proc, command, output = run_script(BPY_PYTHON, _SCENE, args, timeout=180)
    assert proc.returncode == 0, f"{command}\n{output[-2000:]}"
    return blend, json.loads((root / "nodes.json").read_text())


def test_the_reader_and_the_naming_rule_match_a_local_50_render(
    scene: tuple[Path, list[dict[str, object]]],
) -> None:
    blend, nodes = scene
    found = resolve_nodes(nodes, str(blend))
    passes = blend.parent / "passes"
    assert [(o.node, o.slot, o.file_format, o.path) for o in found] == [
        ("passes", 0, "PNG", f"{passes}/pre_image_"),
        ("passes", 1, "PNG", f"{passes}/pre_alpha_A_###"),
        ("layers", None, "OPEN_EXR_MULTILAYER", f"{passes}/ml_"),
    ]
    named = sorted(
        os.path.relpath(destination(o, 2, use_file_extension=True), passes) for o in found
    )
    local = sorted(p.relative_to(passes).as_posix() for p in passes.rglob("*") if p.is_file())
    assert named == local == ["ml_0002.exr", "pre_alpha_A_002.png", "pre_image_0002.png"]
    assert not (blend.parent / "spy").exists()


def test_the_runner_writes_them_into_the_task_folder_only(
    scene: tuple[Path, list[dict[str, object]]], tmp_path: Path
) -> None:
    blend, nodes = scene
    found = resolve_nodes(nodes, str(blend))
    job = tmp_path / "job"
    work = job / "project"
    work.mkdir(parents=True)
    copy = work / blend.name
    copy.write_bytes(blend.read_bytes())
    out = job / "out"
    listed = [{"node": o.node, "slot": o.slot} for o in found]
    events = run_runner(str(BPY_PYTHON), copy, out, file_outputs=listed)
    assert isinstance(events[-1], Done), events[-1]
    saved = sorted(Path(e.path).name for e in events if isinstance(e, FrameSaved))
    expected = [farm_name(i, o, 1, use_file_extension=True) for i, o in enumerate(found)]
    assert saved == sorted(["0001.png", *expected])
    assert sorted(p.name for p in out.iterdir() if p.name.startswith("fileout")) == sorted(expected)
    assert not (work / "passes").exists() and not (blend.parent / "spy").exists()
    # The unlisted, linked-nowhere item got a name inside the folder too: nothing else.
    assert {p.parent for p in out.rglob("*") if p.is_file()} == {out}
