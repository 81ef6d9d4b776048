"""`submit` of a movie output: accepted, and compiled into frame chunks plus one encode."""

from __future__ import annotations

from pathlib import Path

from coordinator.client.http import FarmClient
from tests.cli.conftest import Run
from tests.support.fakeblend import fake_blend_bytes


def project(tmp_path: Path) -> list[str]:
    blend = tmp_path / "shot.blend"
    blend.write_bytes(fake_blend_bytes(4096))
    # --project: Blender cannot trace a fake .blend
    return ["submit", str(blend), "--project", str(tmp_path), "--output", str(tmp_path / "f_")]


def test_a_movie_format_is_accepted_and_encoded_after_the_frames(
    run: Run, api: FarmClient, tmp_path: Path
) -> None:
    result = run(
        *project(tmp_path), "--frames", "1-6", "--chunk-size", "4", "--set", "file_format=FFMPEG"
    )
    assert result.code == 0, result.err
    job = api.job(int(result.out.splitlines()[0]))
    assert [(t["kind"], t["name"]) for t in job["tasks"]] == [
        ("render", "frames 1-4"),
        ("render", "frames 5-6"),
        ("encode", "encode movie 1-6"),
    ]


def test_a_movie_of_scattered_frames_is_refused_saying_why(run: Run, tmp_path: Path) -> None:
    result = run(*project(tmp_path), "--frames", "1-3,7", "--set", "file_format=FFMPEG")
    assert result.code != 0
    assert "consecutive" in result.err and "1-7" in result.err, result.err
