"""The runner refuses to render with files missing (in_blender/inputs.py), in real
Blender: a project laid out as the agent unpacks it, with files taken away."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support.blendgen import BPY_PYTHON, DEBIAN_BLENDER, make_scene
from tests.support.blendgen_deps import Project, make_project
from worker_agent.blender import RenderProcess, build_command, write_task
from worker_agent.events import Done, FrameSaved, RunnerError, RunnerEvent
from worker_agent.in_blender.inputs import Input, as_project_had_it, missing_message, project_root
from worker_agent.in_blender.render_task import RenderTask, TaskError
from worker_agent.probe import probe

# ---------------------------------------------------------------- no Blender


def test_the_project_root_is_the_agents_project_folder(tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "7"
    blend = job / "project" / "shots" / "a.blend"
    assert project_root(str(blend), str(job / "out-3-1")) == str(job / "project")
    # a .blend the agent did not unpack is its own root
    other = tmp_path / "elsewhere" / "a.blend"
    assert project_root(str(other), str(job / "out-3-1")) == str(other.parent)


def test_paths_are_named_as_the_project_had_them(tmp_path: Path) -> None:
    root = str(tmp_path / "project")
    inside = Input(
        "image", "wood", str(tmp_path / "project" / "tex" / "wood.png"), "//tex/wood.png"
    )
    outside = Input("image", "hdr", "/mnt/lib/sky.hdr", "/mnt/lib/sky.hdr")
    assert as_project_had_it(inside, root) == "tex/wood.png"
    assert as_project_had_it(outside, root) == "/mnt/lib/sky.hdr"
    message = missing_message([inside, outside], root)
    assert message.startswith("missing files (")
    assert message.index("tex/wood.png (image 'wood')") < message.index("/mnt/lib/sky.hdr")
    assert str(tmp_path) not in message  # the worker's own folders are not the artist's


def test_the_message_stays_short_for_many_files(tmp_path: Path) -> None:
    many = [Input("image", f"i{n}", str(tmp_path / f"t{n}.png"), f"//t{n}.png") for n in range(25)]
    message = missing_message(many, str(tmp_path))
    assert "t9.png" in message and "t10.png" not in message
    assert "and 15 more" in message


def test_missing_files_takes_fail_or_render_only() -> None:
    base = {"blend": "/p/a.blend", "frames": [1], "output_dir": "/o"}
    assert RenderTask.from_json(base).missing_files == "fail"
    assert RenderTask.from_json({**base, "missing_files": "render"}).missing_files == "render"
    with pytest.raises(TaskError, match="missing_files 'skip' is not fail or render"):
        RenderTask.from_json({**base, "missing_files": "skip"})


# ---------------------------------------------------------------- real Blender


def run_runner(blender: str, blend: Path, out_dir: Path, **fields: Any) -> list[RunnerEvent]:
    task = RenderTask.from_json(
        {"blend": str(blend), "frames": [1], "output_dir": str(out_dir), **fields}
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    task_path = write_task(task, out_dir / "task.json")
    command = build_command(
        probe(blender), task_json_path=task_path, blend_path=blend, allow_scripts=False
    )
    events: list[RunnerEvent] = []

    def on_line(line: str, event: RunnerEvent | None) -> None:
        if event is not None:
            events.append(event)

    with RenderProcess(command, on_line=on_line) as process:
        process.wait(120)
    return events


def unpacked(project: Project, job: Path, *, without: list[Path]) -> Path:
    """The project as the agent unpacks it (<job>/project), less some files."""
    target = job / "project"
    shutil.copytree(project.root, target)
    for path in without:
        (target / path.relative_to(project.root)).unlink()
    return target / project.blend.name


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Project:
    return make_project(tmp_path_factory.mktemp("deps"), frames=(1, 2))


@pytest.mark.blender
def test_a_missing_texture_fails_the_task_naming_it(project: Project, tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "4"
    blend = unpacked(project, job, without=[project.texture])
    events = run_runner(DEBIAN_BLENDER, blend, job / "out-9-1")
    errors = [e for e in events if isinstance(e, RunnerError)]
    assert [type(e) for e in events] == [RunnerError], events
    assert errors[0].message.startswith(
        "missing files (the scene reads them; the job's project lacks them):"
        " tex/checker.png (image 'checker.png')."
    )
    assert str(tmp_path) not in errors[0].message


@pytest.mark.blender
def test_every_kind_missing_is_listed(project: Project, tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "5"
    blend = unpacked(project, job, without=[project.texture, project.library, *project.sequence])
    (error,) = [
        e for e in run_runner(DEBIAN_BLENDER, blend, job / "out-1-1") if isinstance(e, RunnerError)
    ]
    for name in ("tex/checker.png", "seq/plate_0001.png", "lib/set.blend (library 'set.blend')"):
        assert name in error.message


@pytest.mark.blender
def test_the_job_may_ask_to_render_anyway(project: Project, tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "6"
    blend = unpacked(project, job, without=[project.texture])
    events = run_runner(DEBIAN_BLENDER, blend, job / "out-1-1", missing_files="render")
    assert [type(e) for e in events if isinstance(e, FrameSaved | Done)] == [FrameSaved, Done]


@pytest.mark.blender
def test_a_complete_project_renders(project: Project, tmp_path: Path) -> None:
    job = tmp_path / "jobs" / "8"
    blend = unpacked(project, job, without=[])
    events = run_runner(DEBIAN_BLENDER, blend, job / "out-1-1")
    assert not [e for e in events if isinstance(e, RunnerError)], events
    assert any(isinstance(e, Done) for e in events)


# UDIM tiles, a sound, a font, a volume, a mesh cache and a baked cloth's external
# cache, all relative to the .blend; and a packed image (read from the .blend).
_KINDS_SCRIPT = r"""
import os, shutil, sys, wave
import bpy

root = sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[1]
bpy.ops.wm.read_factory_settings(use_empty=True)
bpy.context.preferences.filepaths.save_version = 0
for folder in ("tex", "audio", "fonts"):
    os.makedirs(os.path.join(root, folder), exist_ok=True)
for n in (1001, 1002):
    tile = bpy.data.images.new(f"t{n}", 4, 4)
    tile.filepath_raw = os.path.join(root, "tex", f"tiles.{n}.png")
    tile.file_format = "PNG"
    tile.save()
    bpy.data.images.remove(tile)
tiles = bpy.data.images.load(os.path.join(root, "tex", "tiles.1001.png"))
tiles.source = "TILED"
tiles.use_fake_user = True
with wave.open(os.path.join(root, "audio", "beep.wav"), "wb") as w:
    w.setnchannels(1); w.setsampwidth(2); w.setframerate(8000); w.writeframes(bytes(1600))
bpy.data.sounds.load(os.path.join(root, "audio", "beep.wav")).use_fake_user = True
fonts = bpy.utils.system_resource("DATAFILES", path="fonts")
font_src = os.path.join(fonts, "DejaVuSansMono.woff2")
shutil.copy(font_src, os.path.join(root, "fonts", "mono.woff2"))
text = bpy.data.curves.new("Title", "FONT")
text.font = bpy.data.fonts.load(os.path.join(root, "fonts", "mono.woff2"))
bpy.context.scene.collection.objects.link(bpy.data.objects.new("Title", text))
volume = bpy.data.volumes.new("Smoke")
volume.filepath = "//vdb/smoke.vdb"
bpy.context.scene.collection.objects.link(bpy.data.objects.new("Smoke", volume))
mesh = bpy.data.meshes.new("Blob")
mesh.from_pydata([(0, 0, 0), (1, 0, 0), (0, 1, 0)], [], [(0, 1, 2)])
blob = bpy.data.objects.new("Blob", mesh)
bpy.context.scene.collection.objects.link(blob)
blob.modifiers.new("Anim", "MESH_CACHE").filepath = "//cache/anim.mdd"
cloth = blob.modifiers.new("Cloth", "CLOTH").point_cache
cloth.use_external = True
cloth.filepath = "//bake/cloth"
packed = os.path.join(root, "tex", "packed.png")
image = bpy.data.images.new("p", 4, 4)
image.filepath_raw = packed
image.file_format = "PNG"
image.save()
bpy.data.images.remove(image)
image = bpy.data.images.load(packed)
image.pack()
image.use_fake_user = True
bpy.ops.wm.save_as_mainfile(filepath=os.path.join(root, "kinds.blend"), relative_remap=True)
"""


@pytest.mark.blender
def test_tiles_sounds_fonts_volumes_caches_are_checked_packed_data_not(tmp_path: Path) -> None:
    project = tmp_path / "jobs" / "2" / "project"
    project.mkdir(parents=True)
    script = tmp_path / "kinds.py"
    script.write_text(_KINDS_SCRIPT, encoding="utf-8")
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-exit-code", "1"]
    subprocess.run(
        [*command, "--python", str(script), "--", str(project)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    for rel in ("tex/tiles.1002.png", "audio/beep.wav", "fonts/mono.woff2", "tex/packed.png"):
        (project / rel).unlink()
    events = run_runner(
        DEBIAN_BLENDER, project / "kinds.blend", tmp_path / "jobs" / "2" / "out-1-1"
    )
    (error,) = [e for e in events if isinstance(e, RunnerError)]
    for named in (
        "tex/tiles.1002.png (image 'tiles.1001.png')",
        "audio/beep.wav (sound 'beep.wav')",
        "fonts/mono.woff2 (font 'DejaVu Sans Mono Book')",
        "vdb/smoke.vdb (volume 'Smoke')",
        "cache/anim.mdd (cache 'Blob')",
        "bake/cloth (cache 'Blob')",
    ):
        assert named in error.message
    assert "tex/tiles.1001.png" not in error.message  # the tile that is there
    assert "packed.png" not in error.message  # packed: its file is in the .blend


@pytest.mark.bpy
def test_the_bpy_module_checks_too(tmp_path: Path) -> None:
    project = tmp_path / "jobs" / "3" / "project"
    texture = project / "maps" / "c.png"
    blend = make_scene(project / "a.blend", blender=BPY_PYTHON, frames=(1, 1), texture=texture)
    texture.unlink()
    events = run_runner(str(BPY_PYTHON), blend, tmp_path / "jobs" / "3" / "out-1-1")
    (error,) = [e for e in events if isinstance(e, RunnerError)]
    assert "maps/c.png (image 'c.png')" in error.message


@pytest.mark.blender
def test_a_file_there_under_another_case_is_named_and_not_the_jobs_fault(
    project: Project, tmp_path: Path
) -> None:
    """The .blend says tex/checker.png and seq/plate_0001.png; the project holds
    tex/Checker.png and Seq/: missing on Linux, found on Windows and macOS."""
    job = tmp_path / "jobs" / "9"
    blend = unpacked(project, job, without=[])
    root = job / "project"
    (root / "tex" / "checker.png").rename(root / "tex" / "Checker.png")
    (root / "seq").rename(root / "Seq")
    (error,) = [
        e for e in run_runner(DEBIAN_BLENDER, blend, job / "out-1-1") if isinstance(e, RunnerError)
    ]
    assert not error.job_fault, error
    assert error.message.startswith(
        "missing files (the scene reads them; the job's project lacks them):"
        " tex/checker.png (image 'checker.png') is missing, tex/Checker.png exists (the names"
        " differ in case; Linux workers tell them apart)"
    ), error.message
    assert "seq/plate_0001.png" in error.message
    assert "is missing, Seq/plate_0001.png exists (the names differ in case)" in error.message
    assert str(tmp_path) not in error.message
