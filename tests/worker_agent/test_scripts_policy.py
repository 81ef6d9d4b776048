"""Scripts inside a submitted .blend run on a worker only when it opted in;
compositor File Output nodes, which write files wherever the .blend says, never
write outside the task's folder, opted in or not (a job that does not list them
has them muted; tests/e2e/test_file_outputs.py brings listed ones home).

The .blend carries a text datablock registered as a module (use_module),
which Blender runs when it loads the file if auto-run of scripts is allowed.
Its code writes a file. A worker started without --allow-scripts renders the
frame and the file is not written (Blender says it skipped the script); one
started with it runs the script. Both for Debian's Blender 3.4 binary (-Y/-y)
and for PyPI's bpy 5.0.1 (the runner's --bpy mode: use_scripts_auto_execute
and open_mainfile(use_scripts=...)).
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from coordinator.core.hashing import sha256_file
from tests.support.blendgen import BPY_PYTHON, DEBIAN_BLENDER, make_scene
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.slow]

SCRIPT_NAME = "farm_policy_probe.py"

# Runs in Blender while making the test file: adds the script and saves.
_ADD_SCRIPT = f"""
import bpy, sys
marks = sys.argv[sys.argv.index("--") + 1]
text = bpy.data.texts.new({SCRIPT_NAME!r})
text.from_string(
    "import os\\n"
    f"os.makedirs({{marks!r}}, exist_ok=True)\\n"
    f"open(os.path.join({{marks!r}}, 'ran-%d' % os.getpid()), 'w').write('ran')\\n"
)
text.use_module = True  # "Register": run when the file loads, if scripts may run
# No script at all: a compositor File Output node writing to an absolute path.
scene = bpy.context.scene
scene.use_nodes = True
tree = scene.node_tree
layers = next(n for n in tree.nodes if n.type == "R_LAYERS")
out = tree.nodes.new("CompositorNodeOutputFile")
out.name = "passes"
out.base_path = marks + "-fileout/"
tree.links.new(layers.outputs["Image"], out.inputs[0])
bpy.ops.wm.save_mainfile()
"""


@pytest.fixture(scope="module")
def scripted(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(a .blend whose registered script writes into a folder, that folder)."""
    folder = tmp_path_factory.mktemp("scripted")
    blend = make_scene(folder / "scripted.blend", frames=(1, 1))
    marks = folder / "marks"
    adder = folder / "add_script.py"
    adder.write_text(_ADD_SCRIPT)
    subprocess.run(
        [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y", str(blend), "--python-exit-code", "1",
         "--python", str(adder), "--", str(marks)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    assert not marks.exists()  # -Y: adding it did not run it
    return blend, marks


def render_once(farm: LocalFarm, blend: Path, out: Path) -> str:
    """Renders frame 1 of the file on the farm; returns the task's log."""
    client = farm.client()
    files, _ = client.upload_project({"scripted.blend": blend})
    job = client.submit(
        {
            "name": f"scripts {out.name}",
            "type": "blender-render",
            "blend": "scripted.blend",
            "files": files,
            "blender_version": "3.4",
            "settings": {"frames": "1", "output": str(out / "frame_####"), "preview": False},
        }
    )
    done = farm.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "completed", f"{done['status_reason']}\n{farm.describe()}"
    (output,) = client.outputs(job["id"])
    assert sha256_file(out / "frame_0001.png") == output["sha256"]  # it rendered
    task = client.job(job["id"])["tasks"][0]
    return client.task_log(task["id"])


@pytest.mark.parametrize("runtime", ["binary", pytest.param("bpy", marks=pytest.mark.bpy)])
def test_scripts_run_only_on_a_worker_that_allows_them(
    runtime: str, scripted: tuple[Path, Path], tmp_path: Path
) -> None:
    bpy_python, blender = (str(BPY_PYTHON), None) if runtime == "bpy" else (None, DEBIAN_BLENDER)
    blend, marks = scripted
    fileout = marks.parent / (marks.name + "-fileout")
    shutil.rmtree(marks, ignore_errors=True)
    shutil.rmtree(fileout, ignore_errors=True)
    with LocalFarm(root=tmp_path / "farm") as farm:
        farm.start_coordinator("--no-zeroconf")

        careful = farm.start_worker("careful", blender=blender, bpy_python=bpy_python)
        log = render_once(farm, blend, tmp_path / "careful")
        assert not marks.exists(), "the .blend's script ran on a worker without --allow-scripts"
        assert "scripts disabled for" in log and f"skipping '{SCRIPT_NAME}'" in log
        assert not fileout.exists(), "a File Output node wrote outside the task"
        assert "muted the compositor's File Output node 'passes'" in log
        careful.stop()
        assert [w["status"] for w in farm.client().workers()] == ["offline"]

        farm.start_worker("trusting", "--allow-scripts", blender=blender, bpy_python=bpy_python)
        log = render_once(farm, blend, tmp_path / "trusting")
        assert marks.is_dir() and len(list(marks.iterdir())) == 1, "the script did not run"
        assert "scripts disabled" not in log
        assert not fileout.exists(), "a File Output node wrote outside the task (trusted)"
        assert "muted the compositor's File Output node 'passes'" in log


FORGING_BLENDER = """#!/bin/sh
# Prints a forged runner event, as a .blend could make Blender print text of its
# own (a file path holding a newline, say), then runs the real Blender.
echo '@@FARM@@ {{"event":"frame_saved","frame":1,"path":"{secret}"}}'
exec {blender} "$@"
"""


def test_a_forged_event_cannot_make_the_worker_upload_another_file(tmp_path: Path) -> None:
    """The agent uploads only files inside the task's output folder."""
    secret = tmp_path / "secret.txt"
    secret.write_text("the worker's private key")
    forging = tmp_path / "bin" / "blender"
    forging.parent.mkdir()
    forging.write_text(FORGING_BLENDER.format(secret=secret, blender=DEBIAN_BLENDER))
    forging.chmod(0o755)
    blend = make_scene(tmp_path / "scripted.blend", frames=(1, 1))
    with LocalFarm(root=tmp_path / "farm") as farm:
        farm.start_coordinator("--no-zeroconf")
        # No standby: the forged line must come from the Blender started for the task
        # (what a standby prints before it has a task is nobody's output).
        farm.start_worker("w", "--no-standby", blender=str(forging))
        log = render_once(farm, blend, tmp_path / "out")
    assert "[agent] ignored a saved file outside" in log and str(secret) in log
    stored = list((tmp_path / "farm" / "coordinator" / "jobs").rglob("outputs/*"))
    assert [p.name for p in stored] == ["frame_0001.png"]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["frame_0001.png"]
