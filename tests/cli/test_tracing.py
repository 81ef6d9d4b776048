"""`submit` without --project: reading a .blend's blocks (blendscan.py) and tracing
its files in a real Blender (tracing.py, the add-on's trace_paths.py)."""

from __future__ import annotations

import os
import struct
import subprocess
from pathlib import Path

import pytest

from coordinator.cli import submit
from coordinator.cli.blendscan import file_users
from coordinator.cli.common import CliError
from coordinator.cli.tracing import find_blender, trace, trace_command, traced_project
from tests.support.blendgen import BPY_PYTHON, DEBIAN_BLENDER, make_scene
from tests.support.blendgen_deps import make_project
from tests.support.fakeblend import fake_blend_bytes

BHEAD = struct.Struct("<4siQii")  # 3.4 layout, 8-byte pointers, little endian


def blend_of(tmp_path: Path, *blocks: bytes) -> Path:
    path = tmp_path / "f.blend"
    path.write_bytes(b"BLENDER-v304" + b"".join(blocks) + BHEAD.pack(b"ENDB", 0, 0, 0, 0))
    return path


def block(code: bytes, size: int = 8, sdna: int = 0) -> bytes:
    return BHEAD.pack(code, size, 0, sdna, 1) + bytes(size)


# ---------------------------------------------------------------- blendscan


def test_a_file_of_plain_blocks_uses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "a.blend"
    path.write_bytes(fake_blend_bytes())
    assert file_users(path) == []


def test_id_blocks_that_hold_paths_are_named(tmp_path: Path) -> None:
    path = blend_of(tmp_path, block(b"SC\0\0"), block(b"IM\0\0"), block(b"LI\0\0"))
    assert file_users(path) == ["image", "library"]


@pytest.mark.parametrize(
    ("content", "why"),
    [
        (b"\x28\xb5\x2f\xfd" + bytes(64), "zstd-compressed"),
        (b"BLENDER-v304" + BHEAD.pack(b"REND", 8, 0, 0, 1), "cut short"),
        (b"BLENDER-v304" + BHEAD.pack(b"REND", 10**6, 0, 0, 1), "a block past the end"),
        (b"BLENDER-v304" + block(b"DATA") + BHEAD.pack(b"ENDB", 0, 0, 0, 0), "no DNA"),
        (b"not a blend at all", "no header"),
    ],
)
def test_what_cannot_be_read_cannot_tell(tmp_path: Path, content: bytes, why: str) -> None:
    path = tmp_path / "x.blend"
    path.write_bytes(content)
    assert file_users(path) is None, why


@pytest.mark.blender
def test_real_files_of_blender_3_4(tmp_path: Path) -> None:
    plain = make_scene(tmp_path / "plain.blend", frames=(1, 1))
    assert file_users(plain) == []
    project = make_project(tmp_path / "p", frames=(1, 2))
    assert file_users(project.blend) == ["image", "library"]


@pytest.mark.bpy
def test_real_files_of_blender_5(tmp_path: Path) -> None:
    plain = make_scene(tmp_path / "plain.blend", blender=BPY_PYTHON, frames=(1, 1))
    assert file_users(plain) == []
    textured = make_scene(
        tmp_path / "tex.blend", blender=BPY_PYTHON, frames=(1, 1), texture=tmp_path / "t.png"
    )
    assert file_users(textured) == ["image"]


# ---------------------------------------------------------------- finding Blender


def executable(path: Path, script: str = "#!/bin/sh\nexit 1\n") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(script, encoding="utf-8")
    path.chmod(0o755)
    return path


def test_blender_is_found_as_a_worker_finds_it(tmp_path: Path) -> None:
    on_path = executable(tmp_path / "bin" / "blender")
    named = executable(tmp_path / "opt" / "blender-4.2")
    env = {"PATH": str(tmp_path / "bin")}
    assert find_blender(None, env) == str(on_path)
    assert find_blender(None, {**env, "BLENDER": str(named)}) == str(named)
    assert find_blender(str(named), {**env, "BLENDER": "/nope"}) == str(named)
    assert find_blender(None, {"PATH": str(tmp_path / "empty")}) is None
    with pytest.raises(CliError, match="--blender names '/nope/blender', which is not an exec"):
        find_blender("/nope/blender", env)


def test_the_binary_and_the_bpy_module_are_run_as_each_wants(tmp_path: Path) -> None:
    script, job = tmp_path / "trace_paths.py", tmp_path / "job.json"
    assert trace_command("/venv/bin/python3", script, job) == [
        "/venv/bin/python3",
        str(script),
        str(job),
    ]
    binary = trace_command("/usr/bin/blender", script, job)
    assert binary[:2] == ["/usr/bin/blender", "-b"] and "--disable-autoexec" in binary
    assert binary[-3:] == [str(script), "--", str(job)]


def test_a_blend_that_uses_nothing_needs_no_blender(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("BLENDER", raising=False)
    blend = tmp_path / "a.blend"
    blend.write_bytes(fake_blend_bytes())
    traced = traced_project(blend, None)
    assert traced.files == {"a.blend": blend} and traced.blend == "a.blend"
    assert traced.work_dir is None


def test_a_blender_that_fails_is_reported_with_its_output(tmp_path: Path) -> None:
    blend = blend_of(tmp_path, block(b"IM\0\0"))
    broken = executable(
        tmp_path / "bin" / "blender", "#!/bin/sh\necho 'Segmentation fault'\nexit 139\n"
    )
    with pytest.raises(CliError, match=r"could not trace f\.blend.*\n.*Segmentation fault"):
        traced_project(blend, str(broken))


# ---------------------------------------------------------------- real Blender


@pytest.mark.blender
def test_a_file_blender_cannot_open_is_refused(tmp_path: Path) -> None:
    blend = tmp_path / "z.blend"
    blend.write_bytes(b"\x28\xb5\x2f\xfd" + os.urandom(256))
    (tmp_path / "work").mkdir()
    with pytest.raises(CliError, match=r"cannot open z\.blend: .*"):
        trace(blend, DEBIAN_BLENDER, tmp_path / "work")


@pytest.mark.blender
def test_a_texture_outside_the_folder_goes_to_external_and_the_copy_points_there(
    tmp_path: Path,
) -> None:
    texture = tmp_path / "library" / "checker.png"
    blend = make_scene(
        tmp_path / "shot" / "shot.blend", frames=(1, 1), texture=texture, relative_texture=False
    )
    work = tmp_path / "work"
    work.mkdir()
    traced = trace(blend, DEBIAN_BLENDER, work)
    (external,) = [rel for rel in traced.files if rel.startswith("_external/")]
    assert external.endswith("/checker.png") and traced.files[external] == texture
    copy = traced.files["shot.blend"]
    assert copy.parent == work / "pack"  # the artist's file is not the one sent
    expr = "import bpy; print('PATHS', [i.filepath for i in bpy.data.images])"
    out = subprocess.run(
        [DEBIAN_BLENDER, "-b", "--factory-startup", str(copy), "--python-expr", expr],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert f"PATHS ['//{external}']" in out


@pytest.mark.blender
def test_missing_files_are_named_and_nothing_is_prepared(tmp_path: Path) -> None:
    texture = tmp_path / "tex" / "c.png"
    blend = make_scene(tmp_path / "shot.blend", frames=(1, 1), texture=texture)
    texture.unlink()
    work = tmp_path / "work"
    work.mkdir()
    with pytest.raises(CliError) as info:
        trace(blend, DEBIAN_BLENDER, work)
    assert str(info.value).startswith(
        "shot.blend uses 1 file that cannot be found; nothing was uploaded:\n"
        f'  image "c.png": {texture}\n'
    )
    assert not (work / "pack").exists()


@pytest.mark.bpy
@pytest.mark.blender
def test_a_newer_tracer_saves_a_newer_copy_and_submit_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The bpy module (5.0) traces a file of 3.4: the copy the farm gets is a 5.0
    file, so the job must ask for 5.0 workers, and the artist is told why."""
    project = make_project(tmp_path / "p", frames=(1, 1))
    work = tmp_path / "work"
    work.mkdir()
    traced = trace(project.blend, str(BPY_PYTHON), work)
    assert set(traced.files) == {
        "shot.blend",
        "lib/set.blend",
        "tex/checker.png",
        "seq/plate_0001.png",
    }
    assert submit.version_of_sent(project.blend, traced) == "5.0"
    err = capsys.readouterr().err
    assert "shot.blend was saved by Blender 3.4; the copy the farm gets was saved by" in err
