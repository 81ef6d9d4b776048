"""A File Output node whose format in the .blend is not what the job lists
(multilayer EXR or one file per input) is refused by name before anything is
written; a multilayer node's slot paths, which Blender 3.4 keeps beside its
layer names, are overwritten too: nothing the .blend says decides a path."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.blendgen import DEBIAN_BLENDER, make_scene, run_script
from tests.worker_agent.test_missing_inputs import run_runner
from worker_agent.events import Done, FrameSaved, RunnerError

pytestmark = [pytest.mark.blender]

# Runs in Blender 3.4: a PNG node and a multilayer EXR node, each with a slot
# path climbing out of any folder to the spy folder.
_ADD_NODES = r"""
import json, sys
import bpy
args = json.load(open(sys.argv[sys.argv.index("--") + 1]))
bpy.ops.wm.open_mainfile(filepath=args["blend"])
scene = bpy.context.scene
scene.use_nodes = True
tree = scene.node_tree
layers = next(n for n in tree.nodes if n.type == "R_LAYERS")
for name, fmt in (("png", "PNG"), ("ml", "OPEN_EXR_MULTILAYER")):
    node = tree.nodes.new("CompositorNodeOutputFile")
    node.name = name
    node.base_path = "//"
    node.format.file_format = fmt
    node.file_slots[0].path = args["escape"] + name + "_####"
    tree.links.new(layers.outputs["Image"], node.inputs[0])
bpy.ops.wm.save_mainfile()
"""


@pytest.fixture(scope="module")
def shot(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("formats")
    blend = make_scene(root / "shot.blend", frames=(1, 1), samples=1, resolution=(32, 24))
    args = {"blend": str(blend), "escape": "../" * 12 + str(root / "spy").lstrip("/") + "/"}
    proc, command, output = run_script(DEBIAN_BLENDER, _ADD_NODES, args, timeout=120)
    assert proc.returncode == 0, f"{command}\n{output[-2000:]}"
    return blend


def unpacked(blend: Path, job: Path) -> Path:
    (job / "project").mkdir(parents=True)
    copy = job / "project" / blend.name
    copy.write_bytes(blend.read_bytes())
    return copy


def written(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.mark.parametrize(
    ("listed", "says"),
    [
        ({"node": "png", "slot": None}, "as writing one multilayer EXR file"),
        ({"node": "ml", "slot": 0}, "as writing one file per input"),
    ],
)
def test_a_node_listed_in_another_format_is_refused_by_name(
    shot: Path, tmp_path: Path, listed: dict[str, object], says: str
) -> None:
    job = tmp_path / "job"
    out = job / "out"
    events = run_runner(DEBIAN_BLENDER, unpacked(shot, job), out, file_outputs=[listed])
    assert [type(e) for e in events] == [RunnerError], events
    message = events[0].message  # type: ignore[union-attr]
    assert f"File Output node {listed['node']!r} {says}" in message, message
    assert "submit the job again" in message
    assert not (shot.parent / "spy").exists()
    assert [n for n in written(tmp_path) if not n.startswith("job/project/")] == [
        "job/out/task.json"
    ]


def test_a_multilayer_node_writes_only_into_the_task_folder(shot: Path, tmp_path: Path) -> None:
    job = tmp_path / "job"
    out = job / "out"
    listed = [{"node": "ml", "slot": None}]
    events = run_runner(DEBIAN_BLENDER, unpacked(shot, job), out, file_outputs=listed)
    assert isinstance(events[-1], Done), events
    saved = sorted(Path(e.path).name for e in events if isinstance(e, FrameSaved))
    assert saved == ["0001.png", "fileout1-0001.exr"]
    assert not (shot.parent / "spy").exists()
    assert [n for n in written(tmp_path) if not n.startswith("job/project/")] == [
        "job/out/0001.png",
        "job/out/fileout1-0001.exr",
        "job/out/task.json",
    ]
