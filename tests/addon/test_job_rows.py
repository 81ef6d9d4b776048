"""The Jobs list's rows in Blender 3.4 (background): which jobs are this file's,
which actions each offers, and the time left, as the panel copies them from
what the helper answered (addon._copy_jobs). The job buttons' guard runs in
invoke(), which background Blender never calls: the GUI test clicks it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import run_blender

pytestmark = [pytest.mark.blender, pytest.mark.slow, pytest.mark.timeout(120)]

SCRIPT = """
import json, bpy, addon_utils
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
from flamenco_addon import addon
from flamenco_addon.runtime import STATE, JobsView

def job(id, origin, status, eta=None, actions=("cancel", "pause")):
    return {"id": id, "name": f"j{id}", "status": status, "type": "blender-render",
            "progress": 0.5, "origin": origin, "eta_seconds": eta, "actions": list(actions)}

mine = "a" * 32
STATE.jobs = JobsView("http://farm:1", [
    job(1, mine, "active", eta=300.0),
    job(2, "b" * 32, "active", eta=600.0),  # another file's job on this farm
    job(3, mine, "completed", actions=["regenerate"]),
], "", 1.0, mine, 2)
farm = bpy.context.window_manager.farm
out = {}
for scope in ("FILE", "ALL"):
    farm.scope = scope
    addon._copy_jobs(farm)
    out[scope] = [[r.job_id, r.own, r.actions, r.eta] for r in farm.jobs]
print("OUT " + json.dumps(out))
print("ADDON_TEST_DONE")
"""


def test_rows_know_this_files_jobs_their_actions_and_time_left(tmp_path: Path) -> None:
    out = run_blender(SCRIPT, env=legacy_env(tmp_path))
    got = json.loads(next(x for x in out.splitlines() if x.startswith("OUT "))[4:])
    rows = {
        1: [1, True, "cancel,pause", "about 5 min left"],
        2: [2, False, "", "about 10 min left"],  # should it be listed: its buttons greyed
        3: [3, True, "regenerate", ""],
    }
    assert got["FILE"] == [rows[1], rows[2], rows[3]]
    # Under All the artist chose to act on any job of the farm
    assert got["ALL"] == [rows[1], [2, False, "cancel,pause", "about 10 min left"], rows[3]]
