"""The names a task may upload, from its kind and payload (job_types/outputs.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coordinator.server import job_types
from coordinator.server.job_types.outputs import expected_outputs


def expected(kind: str, payload: dict[str, Any]) -> Any:
    return expected_outputs(kind, json.dumps(payload))


def compiled(type_name: str, **settings: Any) -> list[Any]:
    jt = job_types.get(type_name)
    return jt.compile(jt.validate(settings))


def test_a_render_task_produces_its_frames_named_as_blender_names_them() -> None:
    (task,) = compiled(
        "blender-render",
        preview=False,
        frames="1-3",
        chunk_size=3,
        output="/o/f_##",
        file_format="PNG",
    )
    out = expected(task.kind, task.payload)
    assert out.files == (("f_01.png",), ("f_02.png",), ("f_03.png",))
    assert out.allows("f_02.png") and not out.allows("f_04.png")
    assert not out.allows("shot.blend") and not out.allows("f_02.exr")
    assert out.first_missing({"f_01.png", "f_03.png"}) == "f_02.png"
    assert out.first_missing({"f_01.png", "f_02.png", "f_03.png"}) is None


def test_the_scenes_own_format_allows_any_image_extension_of_the_same_frame() -> None:
    (task,) = compiled("blender-render", preview=False, frames="7", output="/o/shot.png")
    out = expected(task.kind, task.payload)
    # "shot.png" has no "#": Blender appends the number, then the format's extension.
    assert out.allows("shot.png0007.png")
    names = set(out.names)
    assert {"shot.png0007.exr", "shot.png0007.jpg", "shot.png0007.jp2"} <= names
    assert not any("0008" in n for n in names)
    assert "scene's image extension" in out.describe()


def test_without_file_extensions_the_name_is_the_pattern_alone() -> None:
    (task,) = compiled(
        "blender-render", preview=False, frames="2", output="/o/plate_###", use_file_extension=False
    )
    assert expected(task.kind, task.payload).files == (("plate_002",),)


def test_progressive_chunks_and_merges_produce_their_declared_files() -> None:
    tasks = compiled(
        "blender-render-progressive",
        frames="1",
        samples=8,
        chunks=2,
        output="/o/f_####",
        file_format="PNG",
    )
    by_name = {t.name: expected(t.kind, t.payload) for t in tasks}
    assert by_name["frames 1 samples 1-4"].files == (("frame_0001.s0000-0004.exr",),)
    assert by_name["frames 1 finish samples 1-4"].files == (("f_0001.png",),)
    assert by_name["frames 1 merge samples 1-8"].files == (
        ("frame_0001.s0000-0008.exr",),
        ("f_0001.png",),
    )


@pytest.mark.parametrize("kind", ["sleep", "a-kind-from-the-future"])
def test_other_kinds_produce_nothing(kind: str) -> None:
    out = expected(kind, {"seconds": 1})
    assert out.files == () and not out.allows("anything.png")
    assert out.first_missing(set()) is None
    assert "produces no files" in out.describe()


def test_a_long_chunk_is_described_shortly() -> None:
    (task,) = compiled(
        "blender-render",
        preview=False,
        frames="1-500",
        chunk_size=500,
        output="/o/f_####",
        file_format="PNG",
    )
    text = expected(task.kind, task.payload).describe()
    assert text == "f_0001.png, f_0002.png, f_0003.png, f_0004.png, ... (500 files)"


@pytest.mark.parametrize(
    "output",
    [
        "/shots/C:f_####",
        "D:\\shots\\C:f_####",
        "/shots/f:1_####",
        "/shots/a|b_####",
        "/shots/f_####.",
        "D:\\shots\\LPT1.####",
    ],
)
def test_an_output_name_a_worker_would_join_outside_its_folder_is_refused(output: str) -> None:
    jt = job_types.get("blender-render")
    with pytest.raises(job_types.SettingsError, match="give a plain name like frame_####"):
        jt.validate({"frames": "1", "output": output})
