"""Blender 3.4's real window under Xvfb: 20 interactive submits while another timer
keeps redrawing and screenshotting the window through `bpy.ops` (what crashed
Blender when a submit thread of ours ran beside it), and each submit leaves the
artist's file as it was: unsaved changes still marked (`is_dirty`, the `*` in
the window title), same path, same recent files. The file does not change
between the submits, so only the first one uploads it.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.addon_helpers import PACKING_SCENE, REPO, run_blender, site_packages
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.gui, pytest.mark.slow, pytest.mark.timeout(420)]

SUBMITS = 20

# Runs inside Blender's UI. One timer hammers the window with bpy.ops; another
# drives the submits one after the other and checks the file's state around each.
UI_SCRIPT = r"""
import json, os, subprocess, tempfile, time, bpy, addon_utils
url, token, shots, count = (os.environ[k] for k in ("T_URL", "T_TOKEN", "T_SHOTS", "T_COUNT"))
addon_utils.enable("flamenco_addon", default_set=True)
from flamenco_addon import preferences
from flamenco_addon.runtime import STATE
prefs = preferences.get()
prefs.coordinator_mode, prefs.coordinator_url, prefs.token = "URL", url, token
result = {"hammered": 0, "submits": [], "states": []}

def window_title():
    out = subprocess.run(["xdotool", "search", "--name", "Blender", "getwindowname"],
                         capture_output=True, text=True, timeout=10)
    return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

def recent():
    path = os.path.join(bpy.utils.user_resource("CONFIG"), "recent-files.txt")
    return open(path).read() if os.path.exists(path) else ""

def state():
    return [bpy.data.is_dirty, bpy.data.filepath, window_title(), recent()]

def override():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)

def hammer():
    # What scripts/addon_screenshots.py and redraw benchmarks do while the add-on works
    with override():
        bpy.ops.wm.redraw_timer(type="DRAW_WIN_SWAP", iterations=1)
        bpy.ops.screen.screenshot(filepath=os.path.join(shots, "s.png"))
    result["hammered"] += 1
    return 0.02 if walk is not None else None

def steps():
    window = bpy.context.window_manager.windows[0]
    area = max(window.screen.areas, key=lambda a: a.width * a.height)
    area.type = "PROPERTIES"
    yield 1.0
    area.spaces[0].context = "RENDER"
    deadline = time.monotonic() + 30
    while not STATE.job_types and time.monotonic() < deadline:
        yield 0.2  # the panel has drawn the farm's job form, as an artist would see it
    yield 1.0
    # An unsaved change by the artist: the file is dirty before every submit
    bpy.context.scene.frame_current = 2
    bpy.ops.ed.undo_push(message="artist edit")
    yield 0.5
    for n in range(int(count)):
        before = state()
        with override():
            bpy.ops.farm.submit_job("INVOKE_DEFAULT", frames="1-2", chunk_size=1, job_name=f"s{n}")
        deadline = time.monotonic() + 60
        while STATE.submit is not None and time.monotonic() < deadline:
            yield 0.05
        result["submits"].append(STATE.last_result.text if STATE.last_result else "")
        result["states"].append([before, state()])
    yield 0.5

walk = steps()

def tick():
    global walk
    try:
        return next(walk)
    except StopIteration:
        walk = None
        print("RESULT " + json.dumps(result), flush=True)
        print("ADDON_TEST_DONE", flush=True)
        bpy.ops.wm.quit_blender()
    except Exception:
        import traceback
        traceback.print_exc()
        walk = None
        bpy.ops.wm.quit_blender()
    return None

bpy.app.timers.register(tick, first_interval=3.0)
bpy.app.timers.register(hammer, first_interval=3.5)
"""


def test_twenty_submits_beside_screenshots_never_crash_nor_touch_the_file(
    farm: LocalFarm, tmp_path: Path
) -> None:
    run_blender(PACKING_SCENE, str(tmp_path / "project"), str(tmp_path / "outside"))
    (tmp_path / "scripts" / "addons").mkdir(parents=True)
    (tmp_path / "scripts" / "addons" / "flamenco_addon").symlink_to(REPO / "flamenco_addon")
    (tmp_path / "shots").mkdir()
    script = tmp_path / "ui.py"
    script.write_text(UI_SCRIPT, encoding="utf-8")
    env = dict(
        os.environ,
        BLENDER_USER_SCRIPTS=str(tmp_path / "scripts"),
        BLENDER_USER_CONFIG=str(tmp_path / "config"),
        PYTHONPATH=os.pathsep.join([str(REPO), site_packages()]),
        FARM_ZEROCONF_INTERFACES="127.0.0.1",
        TMPDIR=str(tmp_path / "tmp"),
        T_URL=farm.url,
        T_TOKEN=farm.token,
        T_SHOTS=str(tmp_path / "shots"),
        T_COUNT=str(SUBMITS),
    )
    (tmp_path / "tmp").mkdir()
    command = ["xvfb-run", "-a", "-s", "-screen 0 1280x800x24", "/usr/bin/blender"]
    command += ["--factory-startup", "--python-use-system-env"]
    command += [str(tmp_path / "project" / "shot.blend"), "--python", str(script)]
    proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=400)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, f"Blender ended with {proc.returncode}:\n{output[-4000:]}"
    line = next((x for x in proc.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line is not None, output[-4000:]
    result = json.loads(line[len("RESULT ") :])
    assert "Traceback" not in output, output[-4000:]

    assert len(result["submits"]) == SUBMITS
    assert all(" is on the farm " in text for text in result["submits"]), result["submits"]
    # The file did not change between submits: the first one sent it, no other did
    assert "nothing new to upload" not in result["submits"][0]
    assert all("nothing new to upload" in text for text in result["submits"][1:]), result["submits"]
    assert len(farm.client().jobs(limit=100)["jobs"]) == SUBMITS
    assert result["hammered"] > SUBMITS  # the screenshots really ran beside the submits
    for before, after in result["states"]:
        assert before == after
        assert before[0] is True and before[2].startswith("Blender*")  # still unsaved
    assert not list((tmp_path / "tmp").glob("farm-pack-*"))  # every pack folder removed
