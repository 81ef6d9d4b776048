"""Job types: settings validation and compile(), as pure functions (habit 4)."""

from __future__ import annotations

import math
from typing import Any

import pytest

from coordinator.core.protocol import TaskSpec
from coordinator.server import job_types
from coordinator.server.job_types import REGISTRY, SettingsError
from coordinator.server.job_types.schema import Setting, validate

RENDER = REGISTRY["blender-render"]
SLEEP = REGISTRY["sleep"]


def render_settings(**changes: Any) -> dict[str, Any]:
    return {"frames": "1-10", "output": "/renders/shot/frame_####", **changes}


def compile_render(**changes: Any) -> list[TaskSpec]:
    """The render tasks alone: the preview task (on by default) is test_render_defaults's."""
    return RENDER.compile(RENDER.validate(render_settings(preview=False, **changes)))


# ------------------------------------------------------------------ registry
def test_registry_lists_the_seed_types() -> None:
    assert {"sleep", "blender-render"} <= set(REGISTRY)
    for name, job_type in REGISTRY.items():
        assert job_type.name == name
        described = job_type.describe()
        assert described["name"] == name
        assert all("name" in s and "type" in s for s in described["settings"])


def test_unknown_type_names_the_known_ones() -> None:
    with pytest.raises(SettingsError) as info:
        job_types.get("blender-rendr")
    assert info.value.field == "type"
    assert "blender-render" in str(info.value) and "sleep" in str(info.value)


def test_describe_all_is_json_able() -> None:
    import json

    json.dumps(job_types.describe_all())


# --------------------------------------------------------------------- sleep
def test_sleep_defaults() -> None:
    settings = SLEEP.validate({})
    assert settings == {"task_count": 3, "seconds": 1.0, "uneven": 0.0}
    tasks = SLEEP.compile(settings)
    assert [t.name for t in tasks] == ["sleep 1/3", "sleep 2/3", "sleep 3/3"]
    assert all(t.kind == "sleep" and t.payload == {"seconds": 1.0} for t in tasks)
    assert not SLEEP.needs_blend


def test_sleep_compile_is_pure() -> None:
    settings = SLEEP.validate({"task_count": 5, "seconds": 0.5})
    assert SLEEP.compile(settings) == SLEEP.compile(dict(settings))


@pytest.mark.parametrize(
    ("settings", "field"),
    [
        ({"task_count": 0}, "task_count"),
        ({"task_count": -1}, "task_count"),
        ({"task_count": 100_001}, "task_count"),
        ({"task_count": 10**30}, "task_count"),
        ({"task_count": 2.5}, "task_count"),
        ({"task_count": True}, "task_count"),
        ({"task_count": "many"}, "task_count"),
        ({"seconds": -0.1}, "seconds"),
        ({"seconds": math.nan}, "seconds"),
        ({"seconds": math.inf}, "seconds"),
        ({"seconds": "NaN"}, "seconds"),
        ({"seconds": [1]}, "seconds"),
        ({"sleepiness": 3}, "sleepiness"),
    ],
)
def test_sleep_refuses_bad_settings_naming_the_field(settings: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        SLEEP.validate(settings)
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_sleep_accepts_cli_strings() -> None:
    assert SLEEP.validate({"task_count": " 4 ", "seconds": "0.25"}) == {
        "task_count": 4,
        "seconds": 0.25,
        "uneven": 0.0,
    }


def test_sleep_uneven_tasks_take_turns_around_seconds() -> None:
    tasks = SLEEP.compile(SLEEP.validate({"task_count": 4, "seconds": 2, "uneven": 0.5}))
    assert [t.payload["seconds"] for t in tasks] == [1.0, 2.0, 3.0, 1.0]


# ------------------------------------------------------------ blender-render
def test_render_frames_from_the_issue_chunked_in_order() -> None:
    tasks = compile_render(frames="1-100,120,130-140", chunk_size=10)
    frames = [f for t in tasks for f in t.frames]
    assert frames == [*range(1, 101), 120, *range(130, 141)]
    assert len(tasks) == 12  # 112 frames in tens
    assert [len(t.frames) for t in tasks] == [10] * 11 + [2]
    assert tasks[0].name == "frames 1-10"
    assert tasks[10].name == "frames 120,130-138"
    assert tasks[10].frames == (120, *range(130, 139))
    assert tasks[-1].frames == (139, 140)
    assert all(t.kind == "render" for t in tasks)
    assert all(list(t.frames) == t.payload["frames"] for t in tasks)


def test_render_chunk_crossing_a_gap_is_named_by_its_frames() -> None:
    tasks = compile_render(frames="1-3,10,20-21", chunk_size=4)
    assert [t.name for t in tasks] == ["frames 1-3,10", "frames 20-21"]
    assert [t.frames for t in tasks] == [(1, 2, 3, 10), (20, 21)]


def test_render_keeps_the_order_typed_and_drops_duplicates() -> None:
    tasks = compile_render(frames="10,1-3,2", chunk_size=2)
    assert [t.frames for t in tasks] == [(10, 1), (2, 3)]


def test_render_payload_carries_what_the_worker_needs() -> None:
    (task,) = compile_render(
        frames="5", file_format="OPEN_EXR", scene="Main", camera="Cam.002", chunk_size=1
    )
    assert task.payload == {
        "frames": [5],
        "scene": "Main",
        "camera": "Cam.002",
        "output_name": "frame_####",
        "file_format": "OPEN_EXR",
        "use_file_extension": True,
        "missing_files": "fail",
    }


def test_missing_files_is_fail_unless_asked_to_render() -> None:
    (task,) = compile_render(frames="1", missing_files="render")
    assert task.payload["missing_files"] == "render"
    with pytest.raises(SettingsError, match="missing_files"):
        RENDER.validate(render_settings(missing_files="ignore"))


def test_render_defaults() -> None:
    settings = RENDER.validate(render_settings())
    assert settings["chunk_size"] == 4
    assert settings["overwrite"] is True
    assert settings["file_format"] is None
    assert settings["preview"] is True
    tasks = RENDER.compile(settings)  # 10 frames in fours, then the preview of all ten
    assert [t.kind for t in tasks] == ["render"] * 3 + ["preview"]
    assert tasks[-1].depends_on == (0, 1, 2)
    assert tasks[-1].payload["source_frames"] == list(range(1, 11))
    assert RENDER.needs_blend


def test_null_for_a_setting_with_a_default_means_the_default() -> None:
    """A client that sends null for an optional setting gets what leaving it out gives,
    never a null the type cannot compile."""
    settings = RENDER.validate(render_settings(chunk_size=None, overwrite=None, preview=None))
    assert settings["chunk_size"] == 4 and settings["overwrite"] is True
    assert settings["preview"] is True
    assert len(RENDER.compile(settings)) == 4  # three chunks and the preview
    assert job_types.get("sleep").validate({"seconds": None})["seconds"] == 1.0


@pytest.mark.parametrize(
    "output",
    [
        "/renders/shot/frame_####",
        "/renders/shot/",  # a folder: Blender names frames 0001.png ...
        "C:\\renders\\shot\\frame_####",  # a Windows artist
        "C:/renders/shot/frame_####",
        "\\\\server\\share\\frame_####",  # UNC path
    ],
)
def test_render_accepts_absolute_outputs(output: str) -> None:
    assert RENDER.validate(render_settings(output=output))["output"] == output


@pytest.mark.parametrize(
    ("output", "words"),
    [
        ("frame_####", "not an absolute path"),
        ("renders/frame_####", "not an absolute path"),
        ("", "not an absolute path"),
        ("C:frame_####", "not an absolute path"),
        ("//render/frame_####", "relative to the .blend"),  # Blender's "//" is relative
        ("/renders/..", "does not name a file"),
        ("/renders/.", "does not name a file"),
        ("/renders/.Scene_####", "would be hidden files"),  # {scene_name} of a ".Scene"
        ("/renders/\x00frame", "NUL"),
        ("/" + "a" * 5000, "too long"),
    ],
)
def test_render_refuses_bad_outputs(output: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        RENDER.validate(render_settings(output=output))
    assert info.value.field == "output"
    assert words in str(info.value)


@pytest.mark.parametrize("file_format", ["PNG", "OPEN_EXR", "OPEN_EXR_MULTILAYER", "JPEG2000"])
def test_render_accepts_image_formats(file_format: str) -> None:
    assert RENDER.validate(render_settings(file_format=file_format))["file_format"] == file_format


def test_render_refuses_an_unknown_format_listing_the_known_ones() -> None:
    with pytest.raises(SettingsError) as info:
        RENDER.validate(render_settings(file_format="GIF"))
    assert info.value.field == "file_format"
    assert "PNG" in str(info.value)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"frames": ""}, "frames"),
        ({"frames": "1-"}, "frames"),
        ({"frames": "10-1"}, "frames"),
        ({"frames": "1,,2"}, "frames"),
        ({"frames": "a-b"}, "frames"),
        ({"frames": "1-99999999999"}, "frames"),
        ({"frames": 12}, "frames"),
        ({"frames": None}, "frames"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 10_001}, "chunk_size"),
        ({"chunk_size": "four"}, "chunk_size"),
        ({"output": None}, "output"),
        ({"output": 7}, "output"),
        ({"use_file_extension": "maybe"}, "use_file_extension"),
        ({"overwrite": 2}, "overwrite"),
        ({"scene": 1}, "scene"),
        ({"camera": "x" * 1025}, "camera"),
        ({"samples": 64}, "samples"),
    ],
)
def test_render_refuses_each_bad_field_by_name(changes: dict[str, Any], field: str) -> None:
    with pytest.raises(SettingsError) as info:
        RENDER.validate(render_settings(**changes))
    assert info.value.field == field
    assert f"'{field}'" in str(info.value)


def test_render_names_every_bad_field_at_once() -> None:
    """An artist fixes a form in one go when the error lists all of it."""
    with pytest.raises(SettingsError) as info:
        RENDER.validate(
            {"frames": "x", "output": "relative", "chunk_size": 0, "file_format": "GIF"}
        )
    message = str(info.value)
    for field in ("frames", "output", "chunk_size", "file_format"):
        assert f"'{field}'" in message, message
    assert info.value.field == "frames"  # the first, for forms that mark one


def test_missing_required_settings_are_all_named() -> None:
    with pytest.raises(SettingsError) as info:
        RENDER.validate({})
    assert "'frames'" in str(info.value) and "'output'" in str(info.value)
    assert "required" in str(info.value)


def test_settings_must_be_an_object() -> None:
    bad: Any
    for bad in ([], "1-10", None, 3):
        with pytest.raises(SettingsError) as info:
            RENDER.validate(bad)
        assert info.value.field == "settings"


def test_render_refuses_a_job_of_too_many_tasks() -> None:
    with pytest.raises(SettingsError) as info:
        compile_render(frames="1-100001", chunk_size=1)
    assert info.value.field == "settings"
    assert "chunk size" in str(info.value)


def test_render_compile_is_pure() -> None:
    settings = RENDER.validate(render_settings(frames="1-50,70"))
    assert RENDER.compile(settings) == RENDER.compile(dict(settings))


# ---------------------------------------------------------------- the schema
def test_schema_describe_shows_limits_and_choices() -> None:
    setting = Setting("n", "int", "N", default=2, minimum=1, maximum=9)
    assert setting.describe() == {
        "name": "n",
        "type": "int",
        "label": "N",
        "description": "",
        "required": False,
        "default": 2,
        "minimum": 1,
        "maximum": 9,
    }
    choice = Setting("c", "choice", "C", choices=("a", "b"), required=True)
    assert choice.describe()["choices"] == ["a", "b"]
    assert "default" not in choice.describe()


def test_schema_optional_unset_is_none() -> None:
    assert validate([Setting("x", "str", "X")], {}) == {"x": None}


def test_schema_floats_refuse_non_finite_and_bools() -> None:
    schema = [Setting("f", "float", "F")]
    for bad in (math.nan, math.inf, -math.inf, "inf", True):
        with pytest.raises(SettingsError):
            validate(schema, {"f": bad})
    assert validate(schema, {"f": 3}) == {"f": 3.0}
