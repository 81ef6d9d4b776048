"""Screenshots of the add-on's panel for docs/artist-guide.md, from a real Blender UI.

    python scripts/addon_screenshots.py [OUT_DIR]   (needs xvfb-run and Debian's blender)

Runs Debian's Blender 3.4 under Xvfb with the legacy add-on, in the default
layout (the Properties editor at its default width), on a scene made
by tests/support/addon_helpers.PACKING_SCENE. Inside Blender a timer drives the real
interactive path: Start a farm on this computer (detached processes), Submit
with INVOKE_DEFAULT (modal operator, progress in the panel), the Jobs list,
a second Submit cancelled by a real Esc key press (xdotool), and Stop Farm
as a click runs it: it asks while a job renders, and stops when none does.
Zeroconf stays on loopback (FARM_ZEROCONF_INTERFACES). The farm is stopped at
the end. Pictures land in docs/images/addon-*.png (or OUT_DIR: the GUI test
runs this too).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from flamenco_addon import local_farm  # noqa: E402
from tests.support.addon_helpers import PACKING_SCENE, run_blender, site_packages  # noqa: E402

IMAGES = REPO / "docs" / "images"

# Runs inside Blender's UI. Each step returns the seconds until the next one.
UI_SCRIPT = r"""
import os, subprocess, sys, time, bpy, addon_utils
images, data_dir = os.environ["SHOT_DIR"], os.environ["SHOT_FARM_DIR"]
addon_utils.enable("flamenco_addon", default_set=True)
from flamenco_addon import preferences
from flamenco_addon.runtime import STATE
prefs = preferences.get()
prefs.local_data_dir = data_dir
prefs.local_worker = True

def properties():
    # The default layout's Properties editor, at its default (narrow) width
    screen = bpy.context.window.screen
    return next(a for a in screen.areas if a.type == "PROPERTIES")

def override(area):
    window = bpy.context.window_manager.windows[0]
    region = next(r for r in area.regions if r.type == "WINDOW")
    return bpy.context.temp_override(window=window, area=area, region=region)

def to_top(area):
    for _ in range(6):  # the add-on's panel sits right under the Render Engine
        with override(area):
            bpy.ops.view2d.scroll_up(deltay=400)
        area.tag_redraw()
        yield 0.1


def shot(area, name, scroll=True):
    if scroll:
        yield from to_top(area)
    with override(area):
        bpy.ops.screen.screenshot_area(filepath=os.path.join(images, name))
    print("SHOT", name, flush=True)

def steps():
    area = properties()
    yield 1.0
    area.spaces[0].context = "RENDER"
    print("PANEL_PARENT", getattr(bpy.types.RENDER_PT_farm, "bl_parent_id", ""), flush=True)
    yield 1.0
    with override(area):
        bpy.ops.farm.start_local_farm()
    deadline = time.monotonic() + 60
    while (STATE.busy or not STATE.farms) and time.monotonic() < deadline:
        yield 0.5
    print("FARM_START", STATE.last_result, flush=True)  # why, when a later step fails
    yield 3.0
    yield from shot(area, "addon-farm.png")
    yield from to_top(area)
    with override(area):
        bpy.ops.farm.submit_job("INVOKE_DEFAULT", frames="1-2", chunk_size=1)
    yield 0.4  # the copy is being prepared in a background Blender now
    if STATE.submit is not None:
        yield from shot(area, "addon-submitting.png", scroll=False)
    while STATE.submit is not None:
        yield 0.1
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        jobs = STATE.jobs.jobs
        if jobs and jobs[0]["status"] == "completed":
            break
        yield 1.0
    print("JOB_STATUS", STATE.jobs.jobs[0]["status"] if STATE.jobs.jobs else "none")
    bpy.context.window_manager.farm.jobs_index = 0
    yield 2.0
    yield from shot(area, "addon-jobs.png")
    yield from escape_cancels(area)
    yield from stop_asks_first(area)
    print("ADDON_TEST_DONE", flush=True)
    bpy.ops.wm.quit_blender()

def rewrite_blender():
    # The Blender that prepares the farm's copy: a grandchild of this one (via the
    # add-on's helper), running rewrite_paths.py.
    import signal
    helper = STATE.helper._proc.pid if STATE.helper and STATE.helper._proc else None
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = f.read().split(b"\0")
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except OSError:
            continue
        if ppid == helper and any(a.endswith(b"rewrite_paths.py") for a in argv):
            return int(entry)
    return None

def escape_cancels(area):
    # Submit again and press Esc on the keyboard: a real key event from the X
    # server (xdotool), through Blender's event loop to the modal operator.
    # Under Xvfb every redraw is software GL: a key can take a second to reach
    # the operator on a busy machine, longer than this small file's copy takes.
    # So the copy is held (SIGSTOP) while the key travels, as a big scene's copy
    # would take that long; the cancel must end it, and nothing may reach the farm.
    import signal
    from coordinator.client.http import FarmClient
    from flamenco_addon import local_farm
    from pathlib import Path
    farm = local_farm.status(Path(data_dir))
    client = FarmClient(farm.url, token=farm.token)
    before = len(client.jobs()["jobs"])
    # A change since the first submit: the copy is prepared again in a separate Blender.
    bpy.context.scene.render.resolution_x += 2
    bpy.ops.ed.undo_push(message="artist edit")
    with override(area):
        bpy.ops.farm.submit_job("INVOKE_DEFAULT", frames="1-2", chunk_size=1)
    deadline = time.monotonic() + 20
    held = None
    while STATE.submit is not None and held is None and time.monotonic() < deadline:
        held = rewrite_blender()
        if held is None:
            yield 0.02
    if held is not None:
        os.kill(held, signal.SIGSTOP)
    while STATE.submit is not None and not STATE.submit.text.startswith("Preparing"):
        if time.monotonic() > deadline:
            break
        yield 0.02  # what the artist sees when pressing Esc
    print("ESC_SENT_WHILE", STATE.submit.text if STATE.submit else "done", flush=True)
    # over the panel, where the artist's mouse is after clicking Submit
    x = area.x + area.width // 2
    y = bpy.context.window.height - (area.y + area.height // 2)
    subprocess.run(["xdotool", "mousemove", str(x), str(y), "key", "Escape"], check=True)
    deadline = time.monotonic() + 30
    while STATE.submit is not None and time.monotonic() < deadline:
        yield 0.1
    if held is not None:  # gone (the cancel killed it), or let go if the key never came
        try:
            os.kill(held, signal.SIGCONT)
        except ProcessLookupError:
            pass
    yield 1.0  # a job created despite Esc would show up by now
    after = len(client.jobs()["jobs"])
    print("ESCAPE", "held" if held else "not-held", "jobs", before, after, flush=True)
    print("LAST_REPORT", last_report(area), flush=True)

def stop_asks_first(area):
    # Stop Farm as a click runs it (INVOKE_DEFAULT): with a job rendering it asks
    # (a confirmation under the mouse; Esc says no), with nothing running it stops.
    from coordinator.client.http import FarmClient
    from flamenco_addon import local_farm
    from pathlib import Path
    farm = local_farm.status(Path(data_dir))
    client = FarmClient(farm.url, token=farm.token)
    job = client.submit({"name": "naps", "type": "sleep", "settings": {"seconds": 120}})
    deadline = time.monotonic() + 30
    while not STATE.jobs.running and time.monotonic() < deadline:
        yield 0.2
    # Not this file's job (another program sent it): its buttons are refused here
    try:
        with override(area):
            other = bpy.ops.farm.job_action("INVOKE_DEFAULT", job_id=job["id"], action="cancel")
    except RuntimeError as ex:
        other = str(ex).strip()
    print("OTHER_JOB_ACTION", other, client.job(job["id"], tasks=False)["status"], flush=True)
    with override(area):
        asked = bpy.ops.farm.stop_local_farm("INVOKE_DEFAULT")
    yield 1.0
    running = local_farm.status(Path(data_dir)).running
    print("STOP_WITH_WORK", sorted(asked), "running" if running else "stopped", flush=True)
    subprocess.run(["xdotool", "key", "Escape"], check=True)  # the artist says no
    yield 0.5
    client.job_action(job["id"], "cancel")
    deadline = time.monotonic() + 30
    while STATE.jobs.running != 0 and time.monotonic() < deadline:
        yield 0.2
    with override(area):
        direct = bpy.ops.farm.stop_local_farm("INVOKE_DEFAULT")
    while STATE.busy:
        yield 0.5
    running = local_farm.status(Path(data_dir)).running
    print("STOP_IDLE", sorted(direct), "running" if running else "stopped", flush=True)

def last_report(area):
    # What the artist reads in the Info editor: its last line, via its Copy.
    old_type, area.type = area.type, "INFO"
    try:
        with override(area):
            bpy.ops.info.select_all(action="SELECT")
            bpy.ops.info.report_copy()
    finally:
        area.type = old_type
    lines = bpy.context.window_manager.clipboard.strip().splitlines()
    return lines[-1] if lines else ""

walk = steps()

def tick():
    try:
        return next(walk)
    except StopIteration:
        return None
    except Exception:
        import traceback
        traceback.print_exc()
        bpy.ops.wm.quit_blender()
        return None

bpy.app.timers.register(tick, first_interval=3.0)
"""


def main(images: Path = IMAGES) -> tuple[int, str]:
    """Exit code and Blender's output."""
    images.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="addon-shots-") as tmp:
        root = Path(tmp)
        run_blender(PACKING_SCENE, str(root / "project"), str(root / "outside"))
        (root / "scripts" / "addons").mkdir(parents=True)
        (root / "scripts" / "addons" / "flamenco_addon").symlink_to(REPO / "flamenco_addon")
        script = root / "ui.py"
        script.write_text(UI_SCRIPT, encoding="utf-8")
        env = dict(
            os.environ,
            BLENDER_USER_SCRIPTS=str(root / "scripts"),
            BLENDER_USER_CONFIG=str(root / "config"),
            PYTHONPATH=os.pathsep.join([str(REPO), site_packages()]),
            FARM_ZEROCONF_INTERFACES="127.0.0.1",
            SHOT_DIR=str(images),
            SHOT_FARM_DIR=str(root / "farm"),
        )
        # 1600 wide: the Properties editor gets its default share (278 px); tall, so
        # that the panel and its sub-panels fit in one picture.
        command = ["xvfb-run", "-a", "-s", "-screen 0 1600x1900x24", "/usr/bin/blender"]
        command += [
            "--factory-startup",
            "--python-use-system-env",
            str(root / "project" / "shot.blend"),
        ]
        command += ["--python", str(script)]
        try:
            proc = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        finally:  # the farm outlives Blender by design: a failed run must not leave it
            for role in (local_farm.WORKER, local_farm.COORDINATOR):
                local_farm.stop(root / "farm", role, timeout=10)
        output = proc.stdout + proc.stderr
        return (0 if "ADDON_TEST_DONE" in proc.stdout else 1), output


if __name__ == "__main__":
    code, output = main(Path(sys.argv[1]) if len(sys.argv) > 1 else IMAGES)
    print(output[-3000:])
    sys.exit(code)
