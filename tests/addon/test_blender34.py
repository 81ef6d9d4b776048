"""Debian's Blender 3.4 runs the add-on as a legacy add-on (bl_info) and submits;
the packed scene (relative and outside textures, an image sequence, a library
from outside the project) renders on the farm exactly as it does locally,
even after every original file has been moved away.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.support.addon_helpers import (
    DEBIAN_BLENDER,
    PACKING_SCENE,
    REPO,
    reports,
    run_blender,
    site_packages,
)
from tests.support.blendgen import make_scene, png_pixels
from tests.support.localfarm import LocalFarm

pytestmark = [pytest.mark.blender, pytest.mark.slow, pytest.mark.timeout(240)]

SUBMIT = """
import json, sys, bpy, addon_utils
url, token = sys.argv[sys.argv.index("--") + 1:]
mod = addon_utils.enable("flamenco_addon", default_set=True)
assert mod is not None and hasattr(bpy.ops.farm, "submit_job"), "add-on not enabled"
before = (bpy.data.is_dirty, bpy.data.filepath)
result = bpy.ops.farm.submit_job(coordinator=url, token=token, frames="1-2", chunk_size=1)
after = (bpy.data.is_dirty, bpy.data.filepath)
print("RESULT " + json.dumps({"result": sorted(result), "before": before, "after": after}))
print("ADDON_TEST_DONE")
"""


def legacy_env(tmp: Path) -> dict[str, str]:
    """How docs/artist-guide.md installs the legacy add-on: a scripts folder whose
    addons/ has flamenco_addon, and the dependencies on PYTHONPATH."""
    scripts = tmp / "scripts" / "addons"
    scripts.mkdir(parents=True, exist_ok=True)
    link = scripts / "flamenco_addon"
    if not link.exists():
        link.symlink_to(REPO / "flamenco_addon")
    return {
        "BLENDER_USER_SCRIPTS": str(tmp / "scripts"),
        "BLENDER_USER_CONFIG": str(tmp / "config"),  # the add-on's job records go here
        "PYTHONPATH": os.pathsep.join([str(REPO), site_packages()]),
    }


def local_render(blend: Path, out: Path) -> None:
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y", str(blend)]
    command += ["-o", str(out / "f_####"), "-s", "1", "-e", "2", "-a"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)


def test_legacy_addon_packs_and_the_farm_renders_identically(
    farm: LocalFarm, tmp_path: Path
) -> None:
    project, outside = tmp_path / "project", tmp_path / "outside"
    run_blender(PACKING_SCENE, str(project), str(outside))
    local_render(project / "shot.blend", tmp_path / "local")

    out = run_blender(
        SUBMIT, farm.url, farm.token, blend=project / "shot.blend", env=legacy_env(tmp_path)
    )
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    result = json.loads(line[len("RESULT ") :])
    assert result["result"] == ["FINISHED"], reports(out)
    assert result["before"] == result["after"] == [False, str(project / "shot.blend")]
    (job,) = farm.client().jobs()["jobs"]
    assert job["deliver"] is True  # a coordinator on this computer writes the frames itself

    # Nothing of the originals is left for the worker to find by accident.
    project.rename(tmp_path / "project-moved")
    outside.rename(tmp_path / "outside-moved")
    farm.start_worker("w34", blender=DEBIAN_BLENDER)
    done = farm.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "completed", farm.describe()
    names = sorted(os.listdir(project / "render"))
    assert names == ["f_0001.png", "f_0002.png"]
    for name in names:
        assert png_pixels(project / "render" / name) == png_pixels(tmp_path / "local" / name)
    # The two frames differ (the sequence advanced), and the textures count.
    assert png_pixels(project / "render" / names[0]) != png_pixels(project / "render" / names[1])


PROGRESSIVE = """
import json, sys, bpy, addon_utils
url, token = sys.argv[sys.argv.index("--") + 1:]
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
result = bpy.ops.farm.submit_job(
    coordinator=url,
    token=token,
    job_type="blender-render-progressive",
    frames="2",
    settings_json=json.dumps({"chunks": 2}),
)
print("RESULT " + json.dumps(sorted(result)))
print("ADDON_TEST_DONE")
"""


def test_a_progressive_job_takes_its_frames_output_and_samples_from_the_scene(
    farm: LocalFarm, tmp_path: Path
) -> None:
    """Only the chunk count is typed: the rest is the scene's, as for a frame render."""
    blend = make_scene(tmp_path / "project" / "shot.blend", frames=(1, 3), samples=8)
    local = tmp_path / "local"
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "-Y", str(blend)]
    command += ["-o", str(local / "frame_####"), "-f", "2"]
    subprocess.run(command, check=True, capture_output=True, timeout=120)

    out = run_blender(PROGRESSIVE, farm.url, farm.token, blend=blend, env=legacy_env(tmp_path))
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    assert json.loads(line[len("RESULT ") :]) == ["FINISHED"], reports(out)
    (job,) = farm.client().jobs()["jobs"]
    settings = farm.client().job(job["id"])["settings"]
    assert job["type"] == "blender-render-progressive"
    assert (settings["frames"], settings["samples"], settings["chunks"]) == ("2", 8, 2)
    assert settings["output"] == str(blend.parent / "render" / "frame_")

    farm.start_worker("w34", blender=DEBIAN_BLENDER)
    done = farm.wait_for_job(job["id"], timeout=150)
    assert done["status"] == "completed", farm.describe()
    assert sorted(os.listdir(blend.parent / "render")) == ["frame_0002.png"]
    ours, theirs = (
        png_pixels(blend.parent / "render" / "frame_0002.png"),
        png_pixels(local / "frame_0002.png"),
    )
    assert max(abs(a - b) for a, b in zip(ours, theirs, strict=True)) <= 1  # float rounding
