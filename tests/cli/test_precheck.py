"""`submit` refuses what the coordinator would refuse before it uploads a byte:
settings against the served job-type schema, the output path, the BLEND
argument. Proven on a real coordinator by asking it afterwards whether it has
the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from coordinator.core.hashing import sha256_file
from tests.cli.conftest import Run
from tests.support.fakeblend import fake_blend_bytes


def blend_file(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fake_blend_bytes(4096))
    return path


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--chunk-size", "five"),
            "error: setting 'chunk_size': expected a whole number, got 'five'\n",
        ),
        (("--chunk-size", "0"), "error: setting 'chunk_size': 0 is below the minimum 1\n"),
        (("--set", "colour=red"), "error: setting 'colour': unknown setting for this job type"),
        (("--frames", "1-x"), "error: setting 'frames': "),
        (("--set", "file_format=GIF"), "error: setting 'file_format': 'GIF' is not one of"),
        (("--set", "overwrite=maybe"), "error: setting 'overwrite': expected true or false"),
        (("--blender-version", "four"), "error: --blender-version: not a Blender version"),
        (("--output", ""), "error: --output is empty; give the folder and name the frames"),
        (("--output", "  "), "error: --output is empty"),
        (
            ("--output", "/renders/fileout1-f_####"),
            "error: --output /renders/fileout1-f_####: output file names starting with"
            " 'fileout1-' are the farm's names for compositor File Output files",
        ),
    ],
)
def test_bad_settings_are_refused_before_uploading(
    run: Run, api: FarmClient, tmp_path: Path, options: tuple[str, ...], message: str
) -> None:
    blend = blend_file(tmp_path / "big.blend")
    base = ("submit", str(blend), "--frames", "1-4", "--output", str(tmp_path / "f_####"))
    result = run(*base, *options)
    assert result.code == 2, result
    assert result.err.startswith(message), result.err
    assert "upload" not in result.err
    sha = sha256_file(blend)
    assert api.missing([sha]) == [sha]  # nothing was sent


def test_every_bad_setting_is_named_at_once(run: Run, tmp_path: Path) -> None:
    blend = blend_file(tmp_path / "shot.blend")
    result = run("submit", str(blend), "--chunk-size", "x", "--set", "samples=lots")
    assert result.code == 2
    for name in ("chunk_size", "samples", "frames", "output"):
        assert f"setting '{name}'" in result.err, result.err


def test_regenerate_refuses_an_empty_output(run: Run) -> None:
    result = run("regenerate", "1", "--output", "")
    assert result.code == 2 and result.err.startswith("error: --output is empty")


def test_a_folder_given_as_blend_says_what_to_pass(run: Run, tmp_path: Path) -> None:
    project = tmp_path / "shot010"
    blend_file(project / "shot010.blend")
    result = run("submit", str(project), "--frames", "1", "--output", str(tmp_path / "f_"))
    assert result.code == 2
    assert result.err == (
        f"error: {project} is a folder (it holds shot010.blend); give the .blend to render,"
        " and --project with the folder to send its other files too: lanfarm submit"
        f" {project / 'shot010.blend'} --project {project}\n"
    )
    empty = tmp_path / "empty"
    empty.mkdir()
    result = run("submit", str(empty))
    assert result.code == 2 and f"{empty} is a folder;" in result.err
    assert f"lanfarm submit {empty / 'shot.blend'} --project {empty}" in result.err
