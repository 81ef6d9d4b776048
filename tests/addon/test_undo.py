"""Submit leaves the undo history as it was (Debian's Blender 3.4, background).

Blender 3.4 has no API that lists the undo steps, so the test walks them: undo
until there is nothing left to undo, then redo to the end, reading the scene at
each step. The walk before a submit and the walk after it must be the same
(a step pushed by the submit, or a history cleared by it, changes the walk),
and it ends where it started. The artist's changes are unsaved, so the submit
takes the path that copies the unsaved state (main_source).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import PACKING_SCENE, reports, run_blender
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.slow, pytest.mark.timeout(240)]

SCRIPT = """
import json, sys, bpy, addon_utils
url, token = sys.argv[sys.argv.index("--") + 1:]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None

def seen():  # read afresh: an undo step replaces the data
    return [bpy.context.scene.render.resolution_x, len(bpy.data.objects)]

def step(op):
    try:
        return op() == {"FINISHED"}
    except RuntimeError:  # nothing left: the operator's poll refuses
        return False

def walk():
    back, forward = [], []
    while len(back) < 64 and step(bpy.ops.ed.undo):
        back.append(seen())
    while len(forward) < 64 and step(bpy.ops.ed.redo):
        forward.append(seen())
    return {"back": back, "forward": forward, "end": seen()}

# The artist's edits, each an undo step, none saved
for x in (1000, 1100, 1200):
    bpy.context.scene.render.resolution_x = x
    bpy.ops.ed.undo_push(message=f"width {x}")
bpy.ops.object.empty_add()
bpy.ops.ed.undo_push(message="add empty")
before = walk()
result = bpy.ops.farm.submit_job(coordinator=url, token=token, frames="1", chunk_size=1)
after = walk()
undone = step(bpy.ops.ed.undo) and seen()  # one undo after the submit: the empty goes
out = {"result": sorted(result), "before": before, "after": after, "undone": undone}
out["dirty"] = bpy.data.is_dirty
print("RESULT " + json.dumps(out))
print("ADDON_TEST_DONE")
"""


def test_a_submit_leaves_the_undo_history_as_it_was(farm: LocalFarm, tmp_path: Path) -> None:
    project = tmp_path / "project"
    run_blender(PACKING_SCENE, str(project), str(tmp_path / "outside"))
    out = run_blender(
        SCRIPT, farm.url, farm.token, blend=project / "shot.blend", env=legacy_env(tmp_path)
    )
    line = next((x for x in out.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, out[-4000:]
    result = json.loads(line[len("RESULT ") :])
    assert result["result"] == ["FINISHED"], reports(out)
    assert len(farm.client().jobs()["jobs"]) == 1  # the submit really ran

    before, after = result["before"], result["after"]
    objects = before["end"][1]
    # The walk saw the artist's steps: the empty, then the widths, newest first
    assert before["back"][:3] == [[1200, objects - 1], [1100, objects - 1], [1000, objects - 1]]
    assert before["forward"][-1] == before["end"] == [1200, objects]
    assert after == before  # the same steps, in the same order, ending in the same place
    assert result["undone"] == [1200, objects - 1]  # Undo still undoes the artist's last step
    assert result["dirty"] is True
