"""`submit BLEND` of a scene that writes a movie: the trace that finds its files also
reads its output format (flamenco_addon/trace_paths.py), and the CLI submits a movie
job, as the add-on does, unless the person set file_format."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from coordinator.cli.blendformat import IMAGE, scene_format
from coordinator.cli.common import CliError
from coordinator.cli.tracing import Traced, add_movie_format, trace
from coordinator.client.http import FarmClient
from tests.cli.conftest import Run
from tests.support.blendgen import BPY_PYTHON, DEBIAN_BLENDER, make_scene, run_script
from tests.support.fakeblend import fake_blend_bytes


def render_type(api: FarmClient) -> dict[str, Any]:
    (job_type,) = [t for t in api.job_types() if t["name"] == "blender-render"]
    return job_type


def traced(fmt: str | None) -> Traced:
    return Traced({}, "shot.blend", None, (), fmt)


# ---------------------------------------------------------------- the rule


def test_a_movie_scene_becomes_a_movie_job_and_says_so(
    api: FarmClient, capsys: pytest.CaptureFixture[str]
) -> None:
    settings: dict[str, Any] = {"frames": "1-6"}
    add_movie_format(settings, render_type(api), traced("FFMPEG"))
    assert settings["file_format"] == "FFMPEG"
    err = capsys.readouterr().err
    assert "the scene writes FFMPEG movies: the farm renders frames and encodes one movie" in err


@pytest.mark.parametrize(
    ("given", "scene", "told"),
    [
        ("PNG", "FFMPEG", "renders PNG frames as asked"),  # the person's choice stands
        ("AVI_JPEG", "FFMPEG", ""),
        (None, "PNG", ""),  # an image scene: the worker keeps the scene's format
        (None, None, ""),  # not traced (--project, a file that uses nothing)
        (None, "NOT_A_FORMAT", ""),
    ],
)
def test_what_the_person_or_an_image_scene_says_is_left_alone(
    api: FarmClient,
    capsys: pytest.CaptureFixture[str],
    given: str | None,
    scene: str | None,
    told: str,
) -> None:
    settings: dict[str, Any] = {} if given is None else {"file_format": given}
    before = dict(settings)
    add_movie_format(settings, render_type(api), traced(scene))
    assert settings == before
    err = capsys.readouterr().err
    assert (told in err) if told else err == ""


def test_a_movie_of_scattered_frames_is_refused_before_upload(api: FarmClient) -> None:
    with pytest.raises(CliError, match=r"FFMPEG movies.*--frames 1-3,7 is not one range"):
        add_movie_format({"frames": "1-3,7"}, render_type(api), traced("FFMPEG"))


def test_a_farm_that_cannot_make_movies_is_named(api: FarmClient) -> None:
    job_type = render_type(api)
    old = {
        **job_type,
        "settings": [
            {**s, "choices": [c for c in s["choices"] if c not in ("FFMPEG", "AVI_JPEG")]}
            if s["name"] == "file_format"
            else s
            for s in job_type["settings"]
        ],
    }
    with pytest.raises(CliError, match="writes AVI_JPEG movies, which this farm's blender-render"):
        add_movie_format({}, old, traced("AVI_JPEG"))
    sleep = {"name": "sleep", "settings": [{"name": "seconds"}]}
    settings: dict[str, Any] = {}
    add_movie_format(settings, sleep, traced("FFMPEG"))  # a type that sets no format
    assert settings == {}


# ---------------------------------------------------------------- real Blender


@pytest.mark.blender
def test_cli_submit_of_a_movie_scene_makes_chunks_and_an_encode(
    run: Run, api: FarmClient, tmp_path: Path
) -> None:
    """One trace (a texture makes the CLI start Blender): the job is a movie job
    without --set file_format; with --set file_format=PNG it stays frames."""
    blend = make_scene(
        tmp_path / "shot.blend", frames=(1, 6), texture=tmp_path / "tex" / "c.png",
        file_format="FFMPEG",
    )  # fmt: skip
    common = ["submit", str(blend), "--blender", DEBIAN_BLENDER, "--frames", "1-6"]
    result = run(*common, "--chunk-size", "3", "--output", str(tmp_path / "out" / "f_"))
    assert result.code == 0, result.err
    assert "the scene writes FFMPEG movies: the farm renders frames and encodes one movie" in (
        result.err
    )
    job = api.job(int(result.out.splitlines()[0]))
    assert job["settings"]["file_format"] == "FFMPEG"
    assert [(t["kind"], t["name"]) for t in job["tasks"]] == [
        ("render", "frames 1-3"),
        ("render", "frames 4-6"),
        ("encode", "encode movie 1-6"),
    ]
    frames = run(
        *common, "--set", "file_format=PNG", "--output", "/tmp/x/f_", "--dry-run", "--json"
    )
    assert frames.code == 0, frames.err
    assert json.loads(frames.out)["settings"]["file_format"] == "PNG"
    assert "the scene writes FFMPEG movies; the farm renders PNG frames as asked" in frames.err


@pytest.mark.bpy
def test_blender_5_media_type_video_is_read_as_ffmpeg(tmp_path: Path) -> None:
    blend = make_scene(
        tmp_path / "shot.blend", blender=BPY_PYTHON, frames=(1, 2),
        texture=tmp_path / "c.png", file_format="FFMPEG",
    )  # fmt: skip
    work = tmp_path / "work"
    work.mkdir()
    assert trace(blend, str(BPY_PYTHON), work).file_format == "FFMPEG"


# ---------------------------------------------------------------- no trace: the blocks

SECOND_SCENE = """
import bpy, json, sys
args = json.load(open(sys.argv[-1]))
bpy.ops.wm.open_mainfile(filepath=args["path"])
stills = bpy.data.scenes.new("Stills")
stills.render.image_settings.file_format = "PNG"
bpy.ops.wm.save_mainfile(filepath=args["path"])
"""


def test_a_file_the_blocks_reader_cannot_read_tells_nothing(tmp_path: Path) -> None:
    plain = tmp_path / "a.blend"
    plain.write_bytes(fake_blend_bytes())  # no DNA, no scene
    squeezed = tmp_path / "z.blend"
    squeezed.write_bytes(b"\x28\xb5\x2f\xfd" + bytes(64))
    assert scene_format(plain) is None and scene_format(squeezed) is None
    assert scene_format(tmp_path / "gone.blend") is None


@pytest.mark.blender
def test_the_blocks_of_blender_3_4_name_the_rendered_scenes_format(tmp_path: Path) -> None:
    found = {}
    for fmt in ("FFMPEG", "AVI_JPEG", "OPEN_EXR"):
        blend = make_scene(tmp_path / f"{fmt}.blend", frames=(1, 1), file_format=fmt)
        found[fmt] = scene_format(blend)
    assert found == {"FFMPEG": "FFMPEG", "AVI_JPEG": "AVI_JPEG", "OPEN_EXR": IMAGE}
    movie = tmp_path / "FFMPEG.blend"
    proc, _command, output = run_script(
        DEBIAN_BLENDER, SECOND_SCENE, {"path": str(movie)}, timeout=60
    )
    assert proc.returncode == 0, output
    assert scene_format(movie) == "FFMPEG"  # FileGlobal.curscene: the one Blender renders
    assert scene_format(movie, "Stills") == IMAGE and scene_format(movie, "Scene") == "FFMPEG"
    assert scene_format(movie, "Nope") is None


@pytest.mark.bpy
def test_the_blocks_of_blender_5_name_a_video(tmp_path: Path) -> None:
    found = {}
    for fmt in ("FFMPEG", "PNG"):
        blend = make_scene(
            tmp_path / f"{fmt}.blend", blender=BPY_PYTHON, frames=(1, 1), file_format=fmt
        )
        found[fmt] = scene_format(blend)
    assert found == {"FFMPEG": "FFMPEG", "PNG": IMAGE}


@pytest.mark.blender
def test_without_a_trace_a_movie_scene_is_still_a_movie_job(
    run: Run, api: FarmClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A .blend that uses no other file is sent without Blender, and --project sends
    a folder untraced: both read the format from the blocks."""
    blend = make_scene(tmp_path / "shot" / "shot.blend", frames=(1, 4), file_format="FFMPEG")
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))  # no Blender to trace with
    monkeypatch.delenv("BLENDER", raising=False)
    out = ["--frames", "1-4", "--output", str(tmp_path / "out" / "f_")]
    for extra in ([], ["--project", str(blend.parent)]):
        result = run("submit", str(blend), *extra, *out)
        assert result.code == 0, result.err
        assert "the scene writes FFMPEG movies" in result.err
        job = api.job(int(result.out.splitlines()[0]))
        assert job["settings"]["file_format"] == "FFMPEG"
        assert [t["kind"] for t in job["tasks"]] == ["render", "encode"]
