"""The panel's Workers rows in Blender 5.0 (PyPI's bpy==5.0.1, the add-on enabled the
legacy way): what the artist sets there reaches the farm as the job's
requires_tags and needs, and the job waits with the farm's warning naming what
no worker has; a bad tag is refused in the farm's words before anything is sent."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import BPY_PYTHON, run_bpy
from tests.support.blendgen import make_scene
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.bpy, pytest.mark.timeout(300)]

SCRIPT = r"""
import json, sys, bpy, addon_utils
blend, url, token = sys.argv[1:4]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
bpy.ops.wm.open_mainfile(filepath=blend)
bpy.context.scene.render.filepath = "//render/frame_"
form = bpy.context.scene.farm_job
out = {"panel": hasattr(bpy.types, "RENDER_PT_farm_workers")}

def submit():
    try:
        return sorted(bpy.ops.farm.submit_job(coordinator=url, token=token, frames="1"))
    except RuntimeError as ex:  # an operator that reports an error raises in scripts
        return str(ex).strip()

form.require_tags = "gpu, no good"
out["bad"] = submit()
form.require_tags = "gpu"
form.need_device, form.need_memory_gb, form.need_os = "GPU", 16, "linux"
out["good"] = submit()
print("OUT " + json.dumps(out))
print("ADDON_TEST_DONE")
"""


def test_the_workers_rows_reach_the_farm(farm: LocalFarm, tmp_path: Path) -> None:
    blend = make_scene(tmp_path / "project" / "shot.blend", blender=BPY_PYTHON, frames=(1, 1))
    output = run_bpy(SCRIPT, str(blend), farm.url, farm.token, env=legacy_env(tmp_path))
    out = json.loads(next(x for x in output.splitlines() if x.startswith("OUT "))[4:])
    assert out["panel"]
    assert out["bad"].startswith("Error: 'Requires tags': 'no good' is not a tag"), out["bad"]
    assert out["good"] == ["FINISHED"], output[-3000:]
    (job,) = farm.client().jobs()["jobs"]  # the refused one sent nothing
    assert job["requires_tags"] == ["gpu"]
    assert job["needs"] == {"device": "GPU", "memory_mb": 16384, "os": "linux"}
    assert job["status"] == "queued"
    assert job["warning"].startswith("no worker is online"), job["warning"]
    assert "Traceback" not in output
