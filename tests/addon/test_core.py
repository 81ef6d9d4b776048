"""The add-on's logic without Blender: job settings from a scene snapshot, packing plan, paths."""

from __future__ import annotations

import ast
import json
import os
from dataclasses import replace
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from coordinator.server import job_types
from flamenco_addon import packing
from flamenco_addon.packing import Dependency, blend_relative, blender_abspath, plan_pack
from flamenco_addon.requirements import describe, requirements
from flamenco_addon.submission import (
    SCENE_SETTINGS,
    JobForm,
    SceneSnapshot,
    SubmitError,
    classic_file_format,
    coordinator_delivers,
    default_frames,
    drawn_settings,
    is_local_url,
    job_body,
    job_settings,
    output_dir,
    resolve_output,
    scene_settings_of,
)
from flamenco_addon.submitting import Submission, with_schema
from flamenco_addon.sync import adopt_old_folder

ADDON = Path(__file__).resolve().parents[2] / "flamenco_addon"

SNAP = SceneSnapshot(
    blend_path="/home/ann/shots/s010/s010.blend",
    scene_name="Scene",
    camera="Camera",
    frame_start=1,
    frame_end=24,
    frame_step=1,
    render_filepath="//render/s010_####",
    file_format="PNG",
    blender_version="5.0",
)


# ------------------------------------------------------------ job settings


def test_render_settings_come_from_the_scene() -> None:
    settings = job_settings(SNAP, JobForm(chunk_size=6))
    assert settings == {
        "frames": "1-24",
        "chunk_size": 6,
        "output": "/home/ann/shots/s010/render/s010_####",
        "file_format": "PNG",
        "use_file_extension": True,
        "scene": "Scene",
        "camera": "Camera",
        "overwrite": True,
    }


def test_the_form_overrides_frames_and_adds_schema_settings() -> None:
    form = JobForm(frames="1-3, 10", extra={"denoise": True, "output": "/ignored"})
    settings = job_settings(SNAP, form)
    assert settings["frames"] == "1-3, 10"
    assert settings["denoise"] is True
    assert settings["output"] == "/home/ann/shots/s010/render/s010_####"  # the scene's wins


def test_other_job_types_send_only_their_schema_settings() -> None:
    form = JobForm(job_type="sleep", extra={"task_count": 3, "seconds": 0.5})
    assert job_settings(SNAP, form) == {"task_count": 3, "seconds": 0.5}


@pytest.mark.parametrize(
    ("start", "end", "step", "frames"),
    [(1, 250, 1, "1-250"), (5, 5, 1, "5"), (1, 9, 2, "1-9x2"), (-3, 2, 1, "-3-2")],
)
def test_default_frames_follow_the_scene_range(
    start: int, end: int, step: int, frames: str
) -> None:
    snap = replace(SNAP, frame_start=start, frame_end=end, frame_step=step)
    assert default_frames(snap) == frames
    assert job_settings(snap, JobForm())["frames"] == frames  # and the farm can parse it


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"frame_start": 10, "frame_end": 1}, "nothing to render"),
        ({"camera": None}, "no active camera"),
        ({"render_filepath": ""}, "output path"),
        ({"render_filepath": "render/x_##"}, "relative to Blender's working directory"),
        ({"render_filepath": "//out/", "blend_path": ""}, "save the file first"),
        ({"file_format": "NOT_A_FORMAT"}, "does not know the file format"),
    ],
)
def test_problems_are_refused_in_words(change: dict[str, object], words: str) -> None:
    with pytest.raises(SubmitError, match=words):
        job_settings(replace(SNAP, **change), JobForm())  # type: ignore[arg-type]


def test_bad_frames_and_chunk_size_say_what_to_type() -> None:
    with pytest.raises(SubmitError, match="backwards range"):
        job_settings(SNAP, JobForm(frames="10-1"))
    with pytest.raises(SubmitError, match="chunk size"):
        job_settings(SNAP, JobForm(chunk_size=0))


def test_blender_5_media_types_become_classic_formats() -> None:
    assert classic_file_format("OPEN_EXR", "MULTI_LAYER_IMAGE") == "OPEN_EXR_MULTILAYER"
    assert classic_file_format("PNG", "IMAGE") == "PNG"
    snap = replace(SNAP, file_format="OPEN_EXR", media_type="MULTI_LAYER_IMAGE")
    assert job_settings(snap, JobForm())["file_format"] == "OPEN_EXR_MULTILAYER"


@pytest.mark.parametrize(
    ("file_format", "media_type"), [("FFMPEG", ""), ("PNG", "VIDEO"), ("AVI_JPEG", "")]
)
def test_a_movie_output_is_sent_as_a_movie_format(file_format: str, media_type: str) -> None:
    """The farm renders the frames in chunks and encodes the movie (job_types/movie.py)."""
    snap = replace(SNAP, file_format=file_format, media_type=media_type)
    assert job_settings(snap, JobForm())["file_format"] == ("FFMPEG" if media_type else file_format)


def test_output_paths_resolve_like_blender() -> None:
    assert resolve_output(replace(SNAP, render_filepath="//../comp/")) == "/home/ann/shots/comp/"
    win = replace(SNAP, blend_path="C:\\shots\\a.blend", render_filepath="//out\\f_##")
    assert resolve_output(win) == "C:\\shots\\out\\f_##"
    assert output_dir("/r/shot/f_####") == "/r/shot"
    assert output_dir("/r/shot/") == "/r/shot"  # the folder itself, where the coordinator delivers
    assert output_dir("C:\\r\\f_####") == "C:\\r"
    # a name the farm keeps for File Output files: refused before anything is packed
    for reserved in ("//fileout2-beauty_####", "C:\\r\\Unlisted1-x"):
        with pytest.raises(SubmitError, match="the farm's names for compositor File Output"):
            resolve_output(replace(SNAP, render_filepath=reserved))


def test_output_path_templates_are_expanded_here_for_blender_4_5_and_later() -> None:
    """Only the submitting machine knows {blend_dir}; workers get a plain pattern."""
    variables = {
        "blend_name": "s010",
        "blend_dir": "/home/ann/shots/s010/",
        "fps": 24.0,
        "resolution_x": 960,
        "resolution_y": 540,
        "scene_name": "Scene",
        "camera_name": "Camera",
    }
    snap = replace(
        SNAP,
        render_filepath="{blend_dir}render/{blend_name}_{resolution_x}p{fps:##}/f_####",
        path_variables=variables,
    )
    assert resolve_output(snap) == "/home/ann/shots/s010/render/s010_960p24/f_####"
    assert job_settings(snap, JobForm())["output"] == resolve_output(snap)
    # Before 4.5 braces are plain characters, as that Blender reads them.
    old = replace(snap, path_variables=None, render_filepath="//r/{blend_name}_")
    assert resolve_output(old) == "/home/ann/shots/s010/r/{blend_name}_"
    bad = replace(snap, render_filepath="//r/{shot}_####")
    with pytest.raises(
        SubmitError, match=r"template Blender can't use: unknown variable in \{shot\}"
    ):
        resolve_output(bad)


def test_job_body_names_the_job_after_the_file() -> None:
    body = job_body(
        SNAP,
        JobForm(priority=70),
        files={"s010.blend": "ab" * 32},
        blend="s010.blend",
        deliver=True,
    )
    assert body["name"] == "s010"
    assert body["type"] == "blender-render"
    assert (body["priority"], body["blend"], body["deliver"]) == (70, "s010.blend", True)
    assert body["blender_version"] == "5.0"
    assert "@" in body["submitter"]
    other_scene = job_body(
        replace(SNAP, scene_name="Layout"), JobForm(), files={}, blend=None, deliver=False
    )
    assert other_scene["name"] == "s010 - Layout"


def test_loopback_coordinators_deliver_themselves() -> None:
    assert is_local_url("http://127.0.0.1:8765")
    assert is_local_url("http://localhost:8765")
    assert is_local_url("http://[::1]:8765")
    assert not is_local_url("http://192.168.1.20:8765")
    assert coordinator_delivers("http://127.0.0.1:8765")
    assert not coordinator_delivers("http://192.168.1.20:8765")
    assert coordinator_delivers("http://192.168.1.20:8765", "coordinator")
    assert not coordinator_delivers("http://127.0.0.1:8765", "download")
    with pytest.raises(SubmitError):
        coordinator_delivers("http://x", "sometimes")


def test_schema_settings_the_panel_draws() -> None:
    """Every job type that renders takes its frames, output and format from the
    scene; the panel draws only the rest, so a new job type needs no add-on change."""
    served = {t["name"]: t for t in job_types.describe_all()}  # as GET /job-types lists them
    drawn = {name: [s["name"] for s in drawn_settings(t)] for name, t in served.items()}
    assert drawn["blender-render"] == ["preview", "missing_files"]
    assert drawn["blender-render-progressive"] == [
        "chunks",
        "chunk_samples",
        "frames_per_task",
        "preview",
        "missing_files",
    ]
    assert drawn["sleep"] == [s["name"] for s in served["sleep"]["settings"]]
    assert scene_settings_of(served["sleep"]) == frozenset()
    assert scene_settings_of(served["blender-render"]) == SCENE_SETTINGS - {"samples"}


def test_a_progressive_job_takes_frames_output_and_samples_from_the_scene() -> None:
    progressive = next(
        t for t in job_types.describe_all() if t["name"] == "blender-render-progressive"
    )
    snap = replace(SNAP, samples=128)
    form = with_schema(
        JobForm(job_type="blender-render-progressive", extra={"chunks": 8}), [progressive]
    )
    settings = job_settings(snap, form)
    assert settings == {
        "frames": "1-24",
        "samples": 128,
        "chunks": 8,
        "output": "/home/ann/shots/s010/render/s010_####",
        "file_format": "PNG",
        "use_file_extension": True,
        "scene": "Scene",
        "camera": "Camera",
        "overwrite": True,
    }
    compiled = job_types.get("blender-render-progressive")
    assert len(compiled.compile(compiled.validate(settings))) > 24 * 8  # renders + merges
    eevee = replace(snap, engine="BLENDER_EEVEE_NEXT", samples=0)
    with pytest.raises(SubmitError, match="needs Cycles; this scene renders with BLENDER_EEVEE"):
        job_settings(eevee, form)
    with pytest.raises(SubmitError, match="the farm has no job type 'nope'; it has blender-render"):
        with_schema(JobForm(job_type="nope"), [progressive, {"name": "blender-render"}])


# ------------------------------------------------------------------- paths


def test_blender_abspath_is_lexical_and_knows_double_slash() -> None:
    assert blender_abspath("//tex/a.png", "/p/shots") == os.path.normpath("/p/shots/tex/a.png")
    assert blender_abspath("//../lib/x.blend", "/p/shots") == os.path.normpath("/p/lib/x.blend")
    assert blender_abspath("/abs/b.png", "/p") == os.path.normpath("/abs/b.png")


def test_blend_relative_paths_reach_their_target() -> None:
    assert blend_relative("tex/a.png", "shot.blend") == "//tex/a.png"
    assert blend_relative("_external/ab/c.png", "_external/cd/lib.blend") == "//../ab/c.png"


# -------------------------------------------------------------- the plan


def make_project(tmp_path: Path) -> tuple[Path, Path, Path]:
    project, outside = tmp_path / "project", tmp_path / "outside"
    for rel in ("tex/wood.png", "seq/s_0001.png", "seq/s_0002.png", "seq/other_0001.png"):
        (project / rel).parent.mkdir(parents=True, exist_ok=True)
        (project / rel).write_bytes(rel.encode())
    for rel in (
        "abs.png",
        "udim/t.1001.png",
        "udim/t.1002.png",
        "lib/props.blend",
        "cache/a/b.vdb",
    ):
        (outside / rel).parent.mkdir(parents=True, exist_ok=True)
        (outside / rel).write_bytes(rel.encode())
    blend = project / "shot.blend"
    blend.write_bytes(b"BLENDER")
    return project, outside, blend


def test_plan_keeps_the_project_layout_and_moves_outsiders(tmp_path: Path) -> None:
    project, outside, blend = make_project(tmp_path)
    deps = [
        Dependency("image", "wood", str(project / "tex/wood.png")),
        Dependency("image", "wood again", str(project / "tex/wood.png")),
        Dependency("image", "abs", str(outside / "abs.png")),
        Dependency("image", "seq", str(project / "seq/s_0001.png"), sequence=True),
        Dependency("image", "udim", str(outside / "udim/t.<UDIM>.png"), udim=True),
        Dependency("library", "props", str(outside / "lib/props.blend"), blend=True),
        Dependency("cache", "smoke", str(outside / "cache"), directory=True),
    ]
    plan = plan_pack(str(blend), deps)
    assert plan.missing == []
    assert plan.blend_relpath == "shot.blend"
    rel = {f.relpath: f.source for f in plan.files}
    assert rel["tex/wood.png"] == str(project / "tex/wood.png")
    assert "seq/s_0002.png" in rel and "seq/other_0001.png" not in rel  # the sequence, only
    externals = [r for r in rel if r.startswith("_external/")]
    assert len(externals) == 4  # abs.png, two UDIM tiles, one cache file
    udim = {os.path.dirname(r) for r in externals if "t.100" in r}
    assert len(udim) == 1  # tiles stay together, so "<UDIM>" still finds them
    assert [b.relpath.rsplit("/", 1)[-1] for b in plan.blends] == ["props.blend"]
    assert plan.remap[str(outside / "udim/t.<UDIM>.png")].endswith("/t.<UDIM>.png")
    assert plan.remap[str(project / "seq/s_0001.png")] == "seq/s_0001.png"
    assert plan.total_bytes > 0


def test_a_folder_outside_the_project_keeps_its_inner_layout(tmp_path: Path) -> None:
    """A geometry-node bake is meta/*.json + blobs/*.blob: both must stay under the
    one folder the rewritten .blend points at, however deep."""
    project, outside, blend = make_project(tmp_path)
    bake = outside / "bakes" / "right"
    for rel in ("meta/00001.json", "blobs/00001.blob", "blobs/deep/x.bin"):
        (bake / rel).parent.mkdir(parents=True, exist_ok=True)
        (bake / rel).write_bytes(rel.encode())
    inside = project / "blendcache_shot" / "Left_Sim" / "17"
    (inside / "meta").mkdir(parents=True)
    (inside / "meta" / "00001.json").write_bytes(b"{}")
    deps = [
        Dependency("bake", "Right/Sim", str(bake), directory=True, optional=True),
        # the whole blendcache folder and one of its bakes: each file once
        Dependency("cache", "baked simulations", str(project / "blendcache_shot"), directory=True),
        Dependency("bake", "Left/Sim", str(inside.parent), directory=True, optional=True),
    ]
    plan = plan_pack(str(blend), deps)
    assert plan.missing == []
    base = plan.remap[str(bake)]
    assert base.startswith("_external/") and base.endswith("/right")
    rel = sorted(f.relpath for f in plan.files)
    assert rel == [
        *(f"{base}/{r}" for r in ("blobs/00001.blob", "blobs/deep/x.bin", "meta/00001.json")),
        "blendcache_shot/Left_Sim/17/meta/00001.json",
    ]
    assert plan.remap[str(inside.parent)] == "blendcache_shot/Left_Sim"


def test_a_bake_folder_not_baked_yet_is_not_missing(tmp_path: Path) -> None:
    """Blender keeps a modifier's bake folder after "Delete Bake": it simulates
    live then, here and on the farm, so there is nothing to pack or report. An
    external point cache the artist pointed at is required."""
    project, _outside, blend = make_project(tmp_path)
    deps = [
        Dependency(
            "bake",
            "Box/Sim",
            str(project / "blendcache_shot/Box_Sim"),
            directory=True,
            optional=True,
        ),
        Dependency("cache", "Cloth/Cloth", str(project / "gone_cache"), directory=True),
    ]
    plan = plan_pack(str(blend), deps)
    assert [m.owner for m in plan.missing] == ["Cloth/Cloth"]
    assert plan.files == [] and str(project / "blendcache_shot/Box_Sim") not in plan.remap


def test_missing_files_are_listed_before_anything_is_sent(tmp_path: Path) -> None:
    project, _outside, blend = make_project(tmp_path)
    deps = [
        Dependency("image", "gone", str(project / "tex/gone.png")),
        Dependency("image", "seq", str(project / "nope/x_0001.png"), sequence=True),
        Dependency("image", "ok", str(project / "tex/wood.png")),
    ]
    plan = plan_pack(str(blend), deps)
    assert [m.owner for m in plan.missing] == ["gone", "seq"]
    assert plan.missing[0].describe() == f'image "gone": {project / "tex/gone.png"}'
    assert [f.relpath for f in plan.files] == ["tex/wood.png"]


def test_upload_list_and_rewrite_job(tmp_path: Path) -> None:
    project, outside, blend = make_project(tmp_path)
    lib = Dependency("library", "props", str(outside / "lib/props.blend"), blend=True)
    plan = plan_pack(str(blend), [lib, Dependency("image", "w", str(project / "tex/wood.png"))])
    pack = tmp_path / "pack"
    files = packing.upload_files(plan, pack)
    lib_rel = plan.blends[0].relpath
    assert files["shot.blend"] == pack / "shot.blend"  # the saved copy, not the artist's file
    assert files[lib_rel] == pack / lib_rel  # the rewritten library
    assert files["tex/wood.png"] == project / "tex/wood.png"  # plain files go as they are
    job = packing.rewrite_job(plan, pack)
    assert job.blends[0] == {
        "open": str(pack / "shot.blend"),
        "save": str(pack / "shot.blend"),
        "relpath": "shot.blend",
    }
    assert job.blends[1]["open"] == str(outside / "lib/props.blend")  # opened where it lives


def test_rewrite_failures_are_reported(tmp_path: Path) -> None:
    plan = plan_pack(str(tmp_path / "a.blend"), [])
    job = packing.rewrite_job(plan, tmp_path / "pack")
    with pytest.raises(packing.PackError, match="could not prepare"):
        packing.run_rewrite(["python3", "-c", "import sys; sys.exit(3)"], job, tmp_path / "w")


def test_only_the_shell_imports_bpy() -> None:
    """Habit 1: the core modules are importable without Blender."""
    shell = {
        "__init__.py",
        "addon.py",
        "operators.py",
        "panels.py",
        "preferences.py",
        "properties.py",
        "scan.py",
        "rewrite_paths.py",
        "trace_paths.py",
    }
    for path in ADDON.glob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        imports = {
            alias.name.split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.Import)
            for alias in node.names
        } | {
            (node.module or "").split(".")[0]
            for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 0
        }
        if path.name not in shell:
            assert "bpy" not in imports, f"{path.name} imports bpy"


def test_records_of_the_old_config_folder_are_adopted(tmp_path: Path) -> None:
    old, new = tmp_path / "flamenco_addon", tmp_path / "lan_render_farm"
    old.mkdir()
    (old / "jobs.json").write_text('{"jobs": []}')
    assert adopt_old_folder(old, new) == new
    assert (new / "jobs.json").read_text() == '{"jobs": []}'
    assert not old.exists()
    # Once moved (or on a fresh install), the new folder is used as it is.
    old.mkdir()
    (new / "jobs.json").write_text("kept")
    assert adopt_old_folder(old, new) == new
    assert (new / "jobs.json").read_text() == "kept"
    fresh = tmp_path / "fresh"
    assert adopt_old_folder(tmp_path / "none", fresh).is_dir()


# ------------------------------------------------------------ workers it asks for
def test_the_panels_workers_rows_become_requires_tags_and_needs() -> None:
    tags, needs = requirements("gpu, fast", device="GPU", memory_gb=16, system="linux")
    assert tags == ("gpu", "fast")
    assert needs == {"device": "GPU", "memory_mb": 16384, "os": "linux"}
    assert requirements("") == ((), {})  # the defaults ask nothing
    assert describe(tags, needs) == (
        "Only workers with tag gpu, tag fast, Any GPU, Linux, 16 GiB memory"
    )
    assert describe((), {}) == ""
    body = job_body(
        SNAP,
        JobForm(requires_tags=tags, needs=needs),
        files={},
        blend="s010.blend",
        deliver=False,
    )
    assert body["requires_tags"] == ["gpu", "fast"]
    assert body["needs"] == {"device": "GPU", "memory_mb": 16384, "os": "linux"}
    plain = job_body(SNAP, JobForm(), files={}, blend=None, deliver=False)
    assert (plain["requires_tags"], plain["needs"]) == ([], {})


def test_a_bad_tag_is_refused_before_packing_in_the_farms_words() -> None:
    with pytest.raises(SubmitError, match=r"'Requires tags': 'no good' is not a tag"):
        requirements("gpu, no good")


def test_the_requirements_travel_to_the_submitting_helper(tmp_path: Path) -> None:
    """The form goes to the helper process as JSON and comes back whole."""
    tags, needs = requirements("gpu", engine="CYCLES", memory_gb=8)
    sub = Submission(
        client=FarmClient("http://127.0.0.1:1"),
        plan=plan_pack(str(tmp_path / "a.blend"), []),
        pack_root=tmp_path,
        rewrite_command=[],
        snapshot=SNAP,
        form=JobForm(requires_tags=tags, needs=needs),
        deliver=False,
    )
    back = Submission.from_json(json.loads(json.dumps(sub.to_json())))
    body = job_body(back.snapshot, back.form, files={}, blend=None, deliver=False)
    assert body["requires_tags"] == ["gpu"]
    assert body["needs"] == {"engine": "CYCLES", "memory_mb": 8192}
