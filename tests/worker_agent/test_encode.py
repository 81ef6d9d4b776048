"""The encode kind's checks, before anything is fetched or Blender starts.

The encode itself runs in real Blender in tests/e2e/test_movie_render.py.
"""

from __future__ import annotations

from typing import Any

import pytest

from worker_agent.encoding import check_names
from worker_agent.in_blender.encode import EncodeTask
from worker_agent.in_blender.render_task import TaskError
from worker_agent.kinds import KINDS
from worker_agent.task_run import TaskFailure


def encode_json(**changes: Any) -> dict[str, Any]:
    return {
        "blend": "/w/jobs/1/project/shot.blend",
        "output_dir": "/w/jobs/1/out-5-1",
        "frames_dir": "/w/jobs/1/out-5-1/frames",
        "inputs": ["f_0001.png", "f_0002.png", "f_0003.png"],
        "frame_start": 1,
        "frame_end": 3,
        "output_name": "frame_",
        **changes,
    }


def test_a_worker_knows_the_encode_kind() -> None:
    assert "encode" in KINDS


def test_a_good_task_round_trips() -> None:
    task = EncodeTask.from_json(encode_json())
    assert EncodeTask.from_json(task.to_json()) == task
    assert task.render_task().frames == (1,)
    assert task.render_task().blend == task.blend


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"inputs": ["a.png"]}, "need 3 inputs, not 1"),
        ({"frame_end": 0}, "need 0 inputs"),
        ({"output_dir": "relative"}, "absolute path"),
        ({"file_format": "PNG"}, "not a movie format"),
        ({"output_name": "../x"}, "not a plain file name"),
        ({"inputs": ["a.png", "../b.png", "c.png"]}, "not a plain file name"),
        ({"frame_start": "1"}, "whole numbers"),
        ({"colour": 1}, "unknown encode task field"),
    ],
)
def test_a_bad_task_says_what_is_wrong(changes: dict[str, Any], words: str) -> None:
    with pytest.raises(TaskError, match=words):
        EncodeTask.from_json(encode_json(**changes))


def test_a_missing_field_is_named() -> None:
    data = encode_json()
    del data["frame_end"]
    with pytest.raises(TaskError, match="frame_end"):
        EncodeTask.from_json(data)


@pytest.mark.parametrize(
    "payload",
    [
        {"inputs": ["../../etc/passwd"], "output_name": "frame_"},
        {"inputs": ["a.png"], "output_name": "C:evil"},
        {"inputs": [], "output_name": "frame_"},
        {"output_name": "frame_"},
    ],
)
def test_unsafe_or_missing_names_fail_the_task_before_any_fetch(payload: dict[str, Any]) -> None:
    with pytest.raises(TaskFailure):
        check_names(payload)


def test_plain_names_pass() -> None:
    assert check_names({"inputs": ["f_0001.png"], "output_name": "frame_"}) == ["f_0001.png"]
