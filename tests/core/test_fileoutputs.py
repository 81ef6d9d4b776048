"""File Output nodes' files: the farm's names, the destinations as Blender names
them, and what a receiver refuses. Naming rules checked against Blender itself in
tests/e2e/test_file_outputs.py (3.4) and tests/worker_agent/test_file_output_nodes.py (5.0.1)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import (
    FileOutput,
    FileOutputError,
    destination,
    destination_of,
    farm_index,
    farm_name,
    join_slot_path,
    local_destination,
    parse_setting,
    resolve_nodes,
    setting_text,
)
from coordinator.core.names import UnsafeNameError

IMAGE = FileOutput("passes", 0, "PNG", "/shot/passes/image_")
NORMAL = FileOutput("passes", 1, "OPEN_EXR", "/shot/passes/normal/N_###")
LAYERS = FileOutput("layers", None, "OPEN_EXR_MULTILAYER", "/shot/passes/")


@pytest.mark.parametrize(
    ("output", "frame", "farm", "dest"),
    [
        (IMAGE, 7, "fileout1-0007.png", "/shot/passes/image_0007.png"),
        (NORMAL, 7, "fileout1-0007.exr", "/shot/passes/normal/N_007.exr"),
        (NORMAL, -3, "fileout1--0003.exr", "/shot/passes/normal/N_-003.exr"),
        (LAYERS, 12, "fileout1-0012.exr", "/shot/passes/0012.exr"),
    ],
)
def test_farm_names_and_destinations(output: FileOutput, frame: int, farm: str, dest: str) -> None:
    assert farm_name(0, output, frame, use_file_extension=True) == farm
    assert destination(output, frame, use_file_extension=True) == dest
    assert destination_of([output], farm, frame, use_file_extension=True) == dest
    assert farm_index(farm) == 0


def test_without_extensions_both_names_lose_them() -> None:
    assert farm_name(1, IMAGE, 2, use_file_extension=False) == "fileout2-0002"
    assert destination(IMAGE, 2, use_file_extension=False) == "/shot/passes/image_0002"


def test_a_render_frame_is_no_file_output_and_a_wrong_one_is_refused() -> None:
    outputs = [IMAGE, NORMAL]
    assert destination_of(outputs, "frame_0001.png", 1, use_file_extension=True) is None
    assert farm_index("frame_0001.png") is None
    with pytest.raises(FileOutputError, match="no File Output file of this job"):
        destination_of(outputs, "fileout3-0001.png", 1, use_file_extension=True)
    with pytest.raises(FileOutputError, match="not the name of frame 2"):
        destination_of(outputs, "fileout1-0001.png", 2, use_file_extension=True)


@pytest.mark.parametrize(
    ("folder", "name", "joined"),
    [
        ("//passes/", "image_", "//passes/image_"),
        ("//passes", "image_", "//passes/image_"),
        ("", "//ml_", "//ml_"),
        ("C:\\shot\\", "N_", "C:\\shot\\N_"),
        ("//passes/", "", "//passes/"),
    ],
)
def test_join_is_blenders(folder: str, name: str, joined: str) -> None:
    assert join_slot_path(folder, name) == joined


def test_nodes_resolve_next_to_the_blend_as_blender_does() -> None:
    raw = [
        {"node": "passes", "slot": 0, "directory": "//passes", "name": "image_",
         "file_format": "PNG", "codec": "JP2"},
        {"node": "passes", "slot": 1, "directory": "//passes/", "name": "../n/N_###",
         "file_format": "PNG", "codec": "JP2"},
        {"node": "ml", "slot": None, "directory": "", "name": "//ml/{blend_name}_",
         "file_format": "OPEN_EXR_MULTILAYER", "codec": "JP2"},
    ]  # fmt: skip
    found = resolve_nodes(raw, "/home/a/shot/shot.blend", variables={"blend_name": "shot"})
    assert [o.path for o in found] == [
        "/home/a/shot/passes/image_",
        "/home/a/shot/n/N_###",
        "/home/a/shot/ml/shot_",
    ]
    assert parse_setting(setting_text(found)) == found


@pytest.mark.parametrize(
    ("item", "blend", "message"),
    [
        ({"directory": "passes/"}, "/a/s.blend", "relative to Blender's working directory"),
        ({"directory": "//passes/"}, "", "save the file first"),
        ({"file_format": "FFMPEG"}, "/a/s.blend", "movie"),
        ({"name": ".hidden_"}, "/a/s.blend", "hidden"),
        ({"slot": None}, "/a/s.blend", "OPEN_EXR_MULTILAYER exactly when"),
    ],
)
def test_nodes_that_cannot_come_home_are_refused_naming_them(
    item: dict[str, object], blend: str, message: str
) -> None:
    raw = {"node": "passes", "slot": 0, "directory": "//p/", "name": "img_",
           "file_format": "PNG", "codec": "JP2", **item}  # fmt: skip
    with pytest.raises(FileOutputError, match=message) as caught:
        resolve_nodes([raw], blend)
    assert "File Output node 'passes'" in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json", "not JSON"),
        ('{"a": 1}', "expected a JSON list"),
        (json.dumps([{**IMAGE.to_json(), "path": "//p/x"}]), "not absolute"),
        (json.dumps([{**IMAGE.to_json(), "path": "/p/../etc/x"}]), "'..' part"),
        (json.dumps([{**IMAGE.to_json(), "path": "/p/x:y"}]), "':'"),
        (json.dumps([{**IMAGE.to_json(), "node": ""}]), "'node' must be"),
        (json.dumps([{**IMAGE.to_json(), "slot": True}]), "'slot' must be"),
        (json.dumps([IMAGE.to_json()] * 65), "at most 64"),
    ],
)
def test_the_setting_is_checked(text: str, message: str) -> None:
    with pytest.raises(FileOutputError, match=message):
        parse_setting(text)


def test_a_receiver_writes_where_its_own_submission_says(tmp_path: Path) -> None:
    passes = tmp_path / "passes"
    submitted = setting_text([FileOutput("passes", 0, "PNG", f"{passes}/image_")])
    dest = local_destination(submitted, "fileout1-0003.png", 3, use_file_extension=True)
    assert dest == passes / "image_0003.png"
    assert local_destination(submitted, "frame_0003.png", 3, use_file_extension=True) is None
    with pytest.raises(UnsafeNameError, match="no File Output file"):
        local_destination("", "fileout1-0003.png", 3, use_file_extension=True)
    with pytest.raises(UnsafeNameError, match="not the name of frame 4"):
        local_destination(submitted, "fileout1-0003.png", 4, use_file_extension=True)
    passes.mkdir()
    (passes / "image_0003.png").symlink_to(tmp_path / "elsewhere.png")
    with pytest.raises(UnsafeNameError, match="not inside"):
        local_destination(submitted, "fileout1-0003.png", 3, use_file_extension=True)
