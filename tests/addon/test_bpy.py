"""The built extension zip in Blender 5.0 (PyPI's bpy==5.0.1 module, in a child process):
it installs and enables through Blender's extension API, registers its panel
and operators, and `farm.submit_job` against a live coordinator with a
`--bpy-python` worker ends with the frames in the scene's output folder.
Problems come back as sentences, not tracebacks.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.addon_helpers import BPY_PYTHON, REPO, build_extension, run_bpy, site_packages
from tests.support.blendgen import make_scene, png_size
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.bpy, pytest.mark.slow, pytest.mark.timeout(300)]

# Runs in the bpy module: install the zip, then submit from the opened scene.
SCRIPT = r"""
import json, os, sys, bpy
zip_path, blend, url, token = sys.argv[1:5]
out = {}

def call(**kw):
    try:
        return sorted(bpy.ops.farm.submit_job(**{"coordinator": url, "token": token, **kw}))
    except RuntimeError as ex:  # an operator that reports an error raises in scripts
        return str(ex).strip()

result = bpy.ops.extensions.package_install_files(
    filepath=zip_path, repo="user_default", enable_on_install=True
)
out["install"] = sorted(result)
out["addons"] = [a for a in bpy.context.preferences.addons.keys() if "render_farm" in a]
out["ops"] = sorted(dir(bpy.ops.farm))
out["panels"] = [p for p in ("RENDER_PT_farm", "RENDER_PT_farm_jobs") if hasattr(bpy.types, p)]

bpy.ops.wm.open_mainfile(filepath=blend)
# A 4.5+ path template, and braces meant literally ("{{" in a template)
bpy.context.scene.render.filepath = "{blend_dir}render/{blend_name}_{{v2}}_"
before = [bpy.data.is_dirty, bpy.data.filepath]
out["dirty_before"] = bpy.data.is_dirty  # the change above is not saved
out["submit"] = call(frames="1-2", chunk_size=1, wait=True, timeout=180, results="DOWNLOAD")
out["untouched"] = before == [bpy.data.is_dirty, bpy.data.filepath]

out["unreachable"] = call(coordinator="http://127.0.0.1:9", frames="1")
out["bad_token"] = call(token="not-the-token", frames="1")
scene = bpy.context.scene
scene.render.filepath = "renders/frame_"
out["bad_output"] = call(frames="1")
scene.render.filepath = "//render/frame_"
camera, scene.camera = scene.camera, None
out["nothing"] = call()
scene.camera = camera
next(i for i in bpy.data.images if i.filepath).filepath = "//textures/gone.png"
out["missing"] = call(frames="1")
prefs = bpy.context.preferences.addons[out["addons"][0]].preferences
prefs.coordinator_mode, prefs.coordinator_url, prefs.token = "URL", url, token
try:
    out["pause"] = sorted(bpy.ops.farm.job_action(job_id=1, action="pause"))
except RuntimeError as ex:
    out["pause"] = str(ex).strip()
print("OUT " + json.dumps(out))
print("ADDON_TEST_DONE")
"""


@pytest.fixture(scope="module")
def extension_zip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_extension(tmp_path_factory.mktemp("ext"))


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path / "farm", lease_seconds=5.0) as farm:
        farm.start_coordinator("--no-zeroconf")
        farm.start_worker("bpy-worker", bpy_python=str(BPY_PYTHON))
        yield farm


def test_extension_installs_and_submits_from_blender_5(
    extension_zip: Path, farm: LocalFarm, tmp_path: Path
) -> None:
    project = tmp_path / "project"
    blend = make_scene(
        project / "shot.blend",
        blender=BPY_PYTHON,
        frames=(1, 2),
        texture=project / "textures" / "c.png",
    )
    env = {"BLENDER_USER_RESOURCES": str(tmp_path / "blender-user")}
    output = run_bpy(SCRIPT, str(extension_zip), str(blend), farm.url, farm.token, env=env)
    out = json.loads(next(x for x in output.splitlines() if x.startswith("OUT "))[4:])

    assert out["install"] == ["FINISHED"]
    assert out["addons"] == ["bl_ext.user_default.lan_render_farm"]
    assert {"submit_job", "job_action", "start_local_farm", "stop_local_farm"} <= set(out["ops"])
    assert out["panels"] == ["RENDER_PT_farm", "RENDER_PT_farm_jobs"]

    assert out["submit"] == ["FINISHED"], output[-3000:]
    assert out["dirty_before"] is True
    assert out["untouched"], "submitting changed the artist's open file (or its unsaved mark)"
    frames = sorted(p.name for p in (project / "render").iterdir())
    assert frames == ["shot_{v2}_0001.png", "shot_{v2}_0002.png"]
    assert png_size(project / "render" / frames[0]) == (64, 48)
    (job,) = farm.client().jobs()["jobs"]
    assert job["deliver"] is False  # results=DOWNLOAD: the add-on fetched them
    assert job["blender_version"] == "5.0"

    assert out["unreachable"].startswith(
        "Error: Can't reach the farm coordinator at http://127.0.0.1:9"
    )
    assert "refused the farm token" in out["bad_token"]
    assert "relative to Blender's working directory" in out["bad_output"]
    assert "nothing to render" in out["nothing"]
    assert out["missing"].startswith("Error: Missing files, nothing was sent: image")
    assert "gone.png" in out["missing"]
    assert out["pause"].startswith("Error: The farm refused: ")  # the job has finished
    assert "Traceback" not in output


# Runs in the bpy module: for each render.filepath, what Blender names frame 7
# (or its error), next to what the add-on's own expansion + the farm's naming give.
TEMPLATES = r"""
import json, sys, bpy
blend, cases = sys.argv[1], json.loads(sys.argv[2])
from coordinator.core.outputs import frame_path
from flamenco_addon import scan
from flamenco_addon.submission import SubmitError, resolve_output
bpy.ops.wm.read_factory_settings(use_empty=True)
scene = bpy.context.scene
scene.name = ".Sc:1/x"  # made safe as a file name: ".Sc_1_x"
cam = bpy.data.objects.new("Cam{1}|", bpy.data.cameras.new("Cam"))
scene.collection.objects.link(cam)
scene.camera = cam
scene.render.resolution_x, scene.render.resolution_y = 1920, 1080
scene.render.resolution_percentage = 50
bpy.ops.wm.save_as_mainfile(filepath=blend)
pairs = []
for path, fps, fps_base in cases:
    scene.render.filepath, scene.render.fps, scene.render.fps_base = path, fps, fps_base
    try:
        blender = scene.render.frame_path(frame=7)
    except RuntimeError as ex:
        blender = "error"
    try:
        ours = frame_path(resolve_output(scan.snapshot(scene)), 7, file_format="PNG")
    except SubmitError as ex:
        ours = "error"
    pairs.append([path, fps, blender, ours])
print("PAIRS " + json.dumps(pairs))
print("ADDON_TEST_DONE")
"""


def test_output_templates_expand_as_blender_5_expands_them(tmp_path: Path) -> None:
    rates = [(24, 1.0), (30000, 1001.0), (57, 2.0), (24, 1.001)]
    paths = [
        "//out/{blend_name}/{scene_name}_{camera_name}_{resolution_x}x{resolution_y}_{fps}_####",
        "//o/{fps:###}_{fps:.###}_{fps:###.##}_{resolution_x:#####}_{fps:#}",
        "{blend_dir}renders/{blend_name_lib}_{{v2}}_",
        "//o/{resolution_y:.##}/{{{fps:#}}}",
        *("//o/{nope}_", "//o/{fps", "//o/}x", "//o/{scene_name:##}_", "//o/{fps:}"),
    ]
    cases = [(p, fps, base) for p in paths for fps, base in rates]
    env = {"PYTHONPATH": os.pathsep.join([str(REPO), site_packages()])}
    out = run_bpy(TEMPLATES, str(tmp_path / "shot.blend"), json.dumps(cases), env=env)
    pairs = json.loads(next(x for x in out.splitlines() if x.startswith("PAIRS "))[6:])
    assert len(pairs) == len(cases)
    assert sum(blender == "error" for _, _, blender, _ in pairs) == 5 * len(rates)
    for path, fps, blender, ours in pairs:
        assert ours == blender, (path, fps)


# The panel's schema-drawn settings in Blender 5.0: an optional number the job
# type leaves unset (progressive's "Samples per chunk") is not sent as 0.
PANEL_SETTINGS = r"""
import json, bpy, addon_utils
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
from coordinator.server import job_types
from flamenco_addon import properties
from flamenco_addon.submission import drawn_settings, scene_settings_of
kind = next(t for t in job_types.describe_all() if t["name"] == "blender-render-progressive")
form = bpy.context.scene.farm_job
properties.load_schema(form, kind["name"], drawn_settings(kind), scene_settings_of(kind))
out = {"drawn": [i.name for i in form.settings]}
out["optional"] = [i.name for i in form.settings if i.optional]
out["first"] = form.extra()
item = next(i for i in form.settings if i.name == "chunk_samples")
item.use_value, item.int_value = True, 16
out["ticked"] = form.extra()
print("OUT " + json.dumps(out))
print("ADDON_TEST_DONE")
"""


def test_an_unset_optional_number_is_not_sent_as_zero(tmp_path: Path) -> None:
    from tests.addon.test_blender34 import legacy_env

    out = run_bpy(PANEL_SETTINGS, env=legacy_env(tmp_path))
    got = json.loads(next(x for x in out.splitlines() if x.startswith("OUT "))[4:])
    drawn = ["chunks", "chunk_samples", "frames_per_task", "preview", "missing_files"]
    assert got["drawn"] == drawn
    assert got["optional"] == ["chunk_samples"]
    first = {"chunks": 4, "frames_per_task": 1, "preview": True, "missing_files": "fail"}
    assert got["first"] == first  # was chunk_samples=0: refused
    assert got["ticked"] == {**first, "chunk_samples": 16}
