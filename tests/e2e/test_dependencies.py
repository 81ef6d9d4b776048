"""What a .blend uses travels with it, and nothing renders without it: `submit`
without --project (the add-on's tracer in a headless Blender) against a real
coordinator and worker on loopback, and the worker's check of a job that lacks
a file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.test_render import assert_same_pixels, local_render
from tests.support.blendgen import DEBIAN_BLENDER
from tests.support.blendgen_deps import Project, make_project
from tests.support.localfarm import REPO_ROOT, LocalFarm, farm_fixture

pytestmark = [pytest.mark.blender, pytest.mark.slow]

farm = farm_fixture(workers=("w1",), blender=DEBIAN_BLENDER)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("shot"), frames=(1, 3))


def cli(
    farm: LocalFarm, *argv: str, blender: str = DEBIAN_BLENDER
) -> subprocess.CompletedProcess[str]:
    """`python -m coordinator ...` as an artist runs it, with no Blender on PATH:
    only --blender (or its absence) decides."""
    env = {k: v for k, v in os.environ.items() if k not in ("BLENDER", "FARM_TOKEN")}
    env["PATH"] = os.path.dirname(sys.executable)
    connect = ["--coordinator", farm.url, "--token", farm.token]
    with_blender = ["--blender", blender] if blender and argv[0] == "submit" else []
    return subprocess.run(
        [sys.executable, "-m", "coordinator", *argv, *connect, *with_blender],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
        check=False,
    )


def copy_of(project: Project, tmp: Path, *, without: Path | None = None) -> Path:
    """The project somewhere else, less one file; returns its .blend."""
    target = tmp / "copy"
    shutil.copytree(project.root, target)
    if without is not None:
        (target / without.relative_to(project.root)).unlink()
    return target / project.blend.name


def test_submit_sends_what_the_blend_uses_and_frames_match_a_local_render(
    farm: LocalFarm, project: Project, tmp_path: Path
) -> None:
    out = tmp_path / "farm"
    result = cli(
        farm,
        *("submit", str(project.blend), "--frames", "1-3", "--chunk-size", "3"),
        *("--output", str(out / "frame_####"), "--wait", "--timeout", "120"),
    )
    assert result.returncode == 0, result.stderr
    job = farm.client().job(int(result.stdout.split()[0]))
    assert job["status"] == "completed", job["status_reason"]
    unpacked = farm.root / "w1" / "jobs" / str(job["id"]) / "project"
    arrived = {p.relative_to(unpacked).as_posix() for p in unpacked.rglob("*") if p.is_file()}
    assert arrived == {
        "shot.blend",
        "lib/set.blend",
        "tex/checker.png",
        *(f"seq/plate_{n:04d}.png" for n in (1, 2, 3)),
    }
    local = local_render(project.blend, tmp_path / "local", (1, 3))
    names = sorted(os.listdir(out))
    assert names == sorted(os.listdir(local)) == [f"frame_{n:04d}.png" for n in (1, 2, 3)]
    for name in names:
        assert_same_pixels(out / name, local / name)


def test_a_missing_texture_is_refused_before_anything_is_uploaded(
    farm: LocalFarm, project: Project, tmp_path: Path
) -> None:
    blend = copy_of(project, tmp_path, without=project.texture)
    jobs_before = farm.client().jobs()["total"]
    result = cli(farm, "submit", str(blend), "--frames", "1", "--output", str(tmp_path / "f_"))
    assert result.returncode == 2, result.stderr
    missing = tmp_path / "copy" / "tex" / "checker.png"
    assert (
        f"shot.blend uses 1 file that cannot be found; nothing was uploaded:\n"
        f'  image "checker.png": {missing}\n'
    ) in result.stderr
    assert "Find Missing Files" in result.stderr
    assert "upload" not in result.stderr.replace("nothing was uploaded", "")
    assert farm.client().jobs()["total"] == jobs_before


def test_without_blender_a_blend_with_files_is_refused_saying_what_to_do(
    farm: LocalFarm, project: Project, tmp_path: Path
) -> None:
    result = cli(
        farm,
        *("submit", str(project.blend), "--frames", "1", "--output", str(tmp_path / "f_")),
        blender="",
    )
    assert result.returncode == 2
    assert result.stderr == (
        "error: shot.blend uses other files (image, library), and no Blender was found to"
        " trace them: pass --blender PATH (Blender, or a Python with the bpy module), set"
        " BLENDER, or send the folder that holds everything with --project DIR\n"
    )


def test_a_job_lacking_a_file_fails_naming_it_and_delivers_nothing(
    farm: LocalFarm, project: Project, tmp_path: Path
) -> None:
    # --project of the wrong folder: it holds the .blend and its library, not the rest
    folder = tmp_path / "wrong"
    (folder / "lib").mkdir(parents=True)
    shutil.copy(project.blend, folder / "shot.blend")
    shutil.copy(project.library, folder / "lib" / "set.blend")
    out = tmp_path / "out"
    base = ["submit", str(folder / "shot.blend"), "--project", str(folder), "--frames", "1-2"]
    base += ["--chunk-size", "2", "--wait", "--timeout", "120"]  # the default max attempts
    result = cli(farm, *base, "--output", str(out / "frame_####"))
    assert result.returncode == 1, result.stderr
    job_id = result.stdout.split()[0]
    job = farm.client().job(int(job_id))
    assert job["status"] == "failed"
    first = "missing files (the scene reads them; the job's project lacks them): tex/checker.png"
    assert first in job["status_reason"]
    assert "seq/plate_0001.png" in job["status_reason"]
    # Every worker would meet the same: one attempt, not blamed on the worker.
    assert job["status_reason"].endswith("; not retried: every worker would meet the same")
    assert job["max_attempts"] == 3 and job["blocklist"] == []
    tasks = farm.client().tasks(int(job_id))["tasks"]
    (task,) = [t for t in tasks if t["status"] == "failed"]  # the render (not its preview)
    detail = farm.client().task(task["id"])
    assert detail["attempts"] == 1
    assert [f["blamed"] for f in detail["failures"]] == [False]
    # its dashboard row: the files to send first, the verdict last, within 500 characters
    assert detail["activity"].startswith(first), detail["activity"]
    assert detail["activity"].endswith("; not retried: every worker would meet the same")
    assert len(detail["activity"]) <= 500
    assert not out.exists() or os.listdir(out) == []
    shown = cli(farm, "job", job_id)
    assert first in shown.stdout

    # the same job with missing_files=render renders (the texture in magenta)
    result = cli(farm, *base, "--output", str(out / "frame_####"), "--set", "missing_files=render")
    assert result.returncode == 0, result.stderr
    assert sorted(os.listdir(out)) == ["frame_0001.png", "frame_0002.png"]
