"""Names from the network: one plain component on every OS, and destinations inside their folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from coordinator.core.names import (
    UnsafeNameError,
    check_name_pattern,
    check_plain_name,
    check_relative_path,
    inside,
    name_problem,
)


@pytest.mark.parametrize(
    "name",
    [
        "frame_0001.png",
        "f_####",
        "shot 010.exr",
        "übung_ñ_タイム.png",  # non-ASCII is fine
        "a.b.c",
        "CONSOLE.png",  # only the exact device names are reserved
        "com10.png",
        "x" * 255,
    ],
)
def test_plain_names_pass_unchanged(name: str) -> None:
    assert check_plain_name(name) == name
    assert name_problem(name) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("", "empty"),
        (".", "names a folder"),
        ("..", "names a folder"),
        ("../x.png", "path separator"),
        ("a/b", "path separator"),
        ("/etc/passwd", "path separator"),
        ("a\\b", "path separator"),
        ("\\\\server\\share\\x", "path separator"),
        ("..\\..\\startup.py", "path separator"),
        ("C:f_####", "':'"),
        ("C:\\x", "':'"),
        ("c:", "':'"),
        ("frame.png:stream", "':'"),
        ("a\x00b", "control character"),
        ("a\nb", "control character"),
        ("a\x7fb", "control character"),
        ("a\x85b", "control character"),  # a C1 control
        (".bashrc", "hidden"),
        (".hidden.png", "hidden"),
        ("frame.", "ends with a dot"),
        ("frame ", "ends with a dot or a space"),
        ("CON", "reserves"),
        ("con.png", "reserves"),
        ("Nul.tar.gz", "reserves"),
        ("aux .txt", "reserves"),  # Windows drops the space before the extension
        ("COM1", "reserves"),
        ("lpt9.exr", "reserves"),
        ("COM²", "reserves"),
        ("CONOUT$", "reserves"),
        ("x" * 256, "256 bytes"),
        ("é" * 128, "256 bytes"),  # counted in UTF-8 bytes
    ],
)
def test_unsafe_names_are_refused_with_the_reason(name: str, reason: str) -> None:
    with pytest.raises(UnsafeNameError) as caught:
        check_plain_name(name, what="output name")
    assert str(caught.value).startswith(f"output name {name!r} is refused: ")
    assert reason in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_non_text_is_refused() -> None:
    with pytest.raises(UnsafeNameError, match="not text"):
        check_plain_name(123)  # type: ignore[arg-type]


@pytest.mark.parametrize("rel", ["shot.blend", "scenes/shot.blend", "a/b/c/tex_1001.png"])
def test_relative_paths_of_plain_parts_pass(rel: str) -> None:
    assert check_relative_path(rel) == rel


@pytest.mark.parametrize(
    ("rel", "reason"),
    [
        ("", "empty"),
        ("/abs/x.blend", "absolute"),
        ("../x.blend", "names a folder"),
        ("a/../../x.blend", "names a folder"),
        ("a//b.blend", "empty"),
        ("a/", "empty"),
        ("./a.blend", "names a folder"),
        ("a\\b.blend", "path separator"),
        ("C:/x.blend", "':'"),
        ("C:x.blend", "':'"),
        ("a/.git/config", "hidden"),
        ("a/NUL/x", "reserves"),
    ],
)
def test_unsafe_relative_paths_are_refused(rel: str, reason: str) -> None:
    with pytest.raises(UnsafeNameError, match=r"the \.blend") as caught:
        check_relative_path(rel, what="the .blend")
    assert reason in str(caught.value)


def test_inside_accepts_names_and_nested_paths(tmp_path: Path) -> None:
    assert inside(tmp_path, "f_0001.png") == tmp_path.resolve() / "f_0001.png"
    assert inside(tmp_path, "a/b.png") == tmp_path.resolve() / "a" / "b.png"
    assert inside(tmp_path, tmp_path / "c.png") == tmp_path.resolve() / "c.png"


@pytest.mark.parametrize("candidate", ["../x.png", "a/../../x.png", "/etc/passwd", ".", ""])
def test_inside_refuses_what_resolves_elsewhere(tmp_path: Path, candidate: str) -> None:
    folder = tmp_path / "renders"
    folder.mkdir()
    with pytest.raises(UnsafeNameError, match="not inside"):
        inside(folder, candidate)


def test_inside_follows_symlinks_out_of_the_folder(tmp_path: Path) -> None:
    folder, elsewhere = tmp_path / "renders", tmp_path / "config"
    folder.mkdir()
    elsewhere.mkdir()
    os.symlink(elsewhere, folder / "link")
    os.symlink(elsewhere / "startup.py", folder / "dangling.png")
    with pytest.raises(UnsafeNameError, match="config"):
        inside(folder, "link/startup.py")
    with pytest.raises(UnsafeNameError, match=r"startup\.py"):
        inside(folder, "dangling.png")  # a dangling link still points somewhere else
    assert not (elsewhere / "startup.py").exists()


def test_inside_accepts_a_folder_reached_through_a_link(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.mkdir()
    os.symlink(real, tmp_path / "renders")
    assert inside(tmp_path / "renders", "f.png") == real / "f.png"


def test_hidden_parts_may_be_allowed_in_relative_paths() -> None:
    assert check_relative_path("a/.cache/x.vdb", allow_hidden=True) == "a/.cache/x.vdb"
    for rel in ("a/../x", "./x", "a/C:x", "a/.\\x"):
        with pytest.raises(UnsafeNameError):
            check_relative_path(rel, allow_hidden=True)


@pytest.mark.parametrize("pattern", ["", "frame_####", "f.", "f_", "shot_##_v2", "CON_####"])
def test_patterns_are_checked_as_blender_completes_them(pattern: str) -> None:
    assert check_name_pattern(pattern) == pattern


@pytest.mark.parametrize(
    "pattern", ["../f_####", "C:f_####", "\\\\server\\x", "/abs/f_", ".f_####", "NUL.####", "a#."]
)
def test_unsafe_patterns_are_refused(pattern: str) -> None:
    with pytest.raises(UnsafeNameError, match="output name"):
        check_name_pattern(pattern)
