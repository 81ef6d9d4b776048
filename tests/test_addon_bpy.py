"""The built extension zip in Blender 5.0 (PyPI's bpy==5.0.1 module, in a child process):
it installs and enables through Blender's extension API, registers its panel
and operators, and `farm.submit_job` against a live coordinator with a
`--bpy-python` worker ends with the frames in the scene's output folder.
Problems come back as sentences, not tracebacks.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from coordinator.localfarm import LocalFarm
from tests.addon_helpers import BPY_PYTHON, build_extension, run_bpy
from tests.blendgen import make_scene, png_size

pytestmark = [pytest.mark.bpy, pytest.mark.slow, pytest.mark.timeout(300)]

if not BPY_PYTHON.exists():
    pytest.skip("needs .venv-bpy with bpy==5.0.1 (make setup-test)", allow_module_level=True)

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
before = [bpy.data.is_dirty, bpy.data.filepath]
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
    assert out["untouched"], "submitting changed the artist's open file"
    frames = sorted(p.name for p in (project / "render").iterdir())
    assert frames == ["frame_0001.png", "frame_0002.png"]
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
