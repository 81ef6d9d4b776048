"""Frame lists: what artists type, what the farm shows back, how jobs are chunked."""

from __future__ import annotations

import re
import time

import pytest

from coordinator.core.frames import (
    MAX_FRAME,
    MIN_FRAME,
    FrameError,
    chunk_frames,
    format_frames,
    parse_frames,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7", [7]),
        ("0", [0]),
        ("1-5", [1, 2, 3, 4, 5]),
        ("1-3,5,7-9", [1, 2, 3, 5, 7, 8, 9]),
        (" 1 - 3 , 5 ,7- 8 ", [1, 2, 3, 5, 7, 8]),
        ("5-5", [5]),
        ("1-10x2", [1, 3, 5, 7, 9]),
        ("1-10X3", [1, 4, 7, 10]),
        ("1 - 10 x 4", [1, 5, 9]),
        ("1-3x10", [1]),
        ("-5--1", [-5, -4, -3, -2, -1]),
        ("-5 - -1", [-5, -4, -3, -2, -1]),
        ("-2-1", [-2, -1, 0, 1]),
        ("-3", [-3]),
        ("10,1-3", [10, 1, 2, 3]),  # order given is kept
        ("1-3,2-5,1", [1, 2, 3, 4, 5]),  # duplicates dropped, first wins
        ("5,3,5,3", [5, 3]),
        ("007", [7]),
        (f"{MIN_FRAME},{MAX_FRAME}", [MIN_FRAME, MAX_FRAME]),
    ],
)
def test_parse_frames(text: str, expected: list[int]) -> None:
    assert parse_frames(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "frames: the frame list is empty; expected e.g. '1-100', '1,5,10-20' or '1-10x2'"),
        ("   ", "frames: the frame list is empty"),
        ("10-1", "frames: '10-1' is a backwards range; write it as 1-10"),
        ("1, 10 - 1", "frames: '10 - 1' is a backwards range; write it as 1-10"),
        ("-1--5", "frames: '-1--5' is a backwards range; write it as -5--1"),
        ("1,,2", "frames: '1,,2' has an empty entry; remove the extra comma"),
        ("1-10,", "frames: '1-10,' has an empty entry"),
        ("abc", "frames: 'abc' is not a frame or a range; expected e.g. '1-100'"),
        ("1-10,x", "frames: 'x' is not a frame or a range"),
        ("1..10", "frames: '1..10' is not a frame or a range"),
        ("1 2", "frames: '1 2' is not a frame or a range"),
        ("1-", "frames: '1-' is not a frame or a range"),
        ("1-10x", "frames: '1-10x' is not a frame or a range"),
        ("5x2", "frames: '5x2' is not a frame or a range"),
        ("1.5", "frames: '1.5' is not a frame or a range"),
        ("١-٣", "is not a frame or a range"),  # Arabic-Indic digits are not frames
        ("1-10x0", "frames: step 0 in '1-10x0' must be from 1 to 1,000,000"),
        ("1-10x" + "9" * 5000, "must be from 1 to 1,000,000"),
        ("1048575", "frames: 1048575 in '1048575' is out of range; Blender frames go from"),
        ("-1048575-0", "frames: -1048575 in '-1048575-0' is out of range"),
        ("1-" + "9" * 5000, "is out of range"),
        ("0-1000000", "frames: '0-1000000' has more than 1,000,000 frames"),
        ("1-600000,-600000-0", "has more than 1,000,000 frames"),
    ],
)
def test_parse_frames_rejects(text: str, message: str) -> None:
    with pytest.raises(FrameError) as caught:
        parse_frames(text)
    assert message in str(caught.value)


def test_frame_error_is_a_value_error() -> None:
    """Callers that only know ValueError (argparse, JSON validation) still catch it."""
    assert issubclass(FrameError, ValueError)


def test_a_million_frames_is_allowed() -> None:
    assert len(parse_frames("1-1000000")) == 1_000_000


def test_overlapping_ranges_give_each_frame_once_in_the_order_given() -> None:
    assert parse_frames("5-8,1-6,7,2") == [5, 6, 7, 8, 1, 2, 3, 4]
    assert parse_frames("10-12,1-3,2-11,20,0-25") == [
        *(10, 11, 12, 1, 2, 3, 4, 5, 6, 7, 8, 9, 20, 0),
        *range(13, 20),
        *range(21, 26),
    ]
    assert parse_frames("1-9x2,1-5") == [1, 3, 5, 7, 9, 2, 4]
    assert len(parse_frames("1-500000,1-500000")) == 500_000


@pytest.mark.parametrize(
    ("text", "message"),
    [
        # Repeats count: the list's cost is bounded before anything is expanded.
        (",".join(["1-1000000"] * 40), "has more than 1,000,000 frames (counting repeats)"),
        ("1-1000000,1", "has more than 1,000,000 frames (counting repeats)"),
        (",".join(["1"] * 10_001), "has more than 10,000 entries"),
        ("1," * 50_000 + "1", "is 100,001 characters long; at most 100,000"),
    ],
)
def test_a_frame_list_too_costly_to_expand_is_refused_at_once(text: str, message: str) -> None:
    started = time.perf_counter()
    with pytest.raises(FrameError, match=re.escape(message)) as caught:
        parse_frames(text)
    assert time.perf_counter() - started < 0.1  # generous: a few microseconds per entry
    assert len(str(caught.value)) < 300  # the message quotes the list shortened


def test_a_400_character_list_is_answered_within_a_tenth_of_a_second() -> None:
    """The worst that fits in 400 characters and is accepted: ranges that overlap,
    up to the frame limit, each one expanded once."""
    text = ",".join(f"{i}-{i + 24_000}" for i in range(1, 41 * 997, 997))[:400].rsplit(",", 1)[0]
    assert 380 <= len(text) <= 400
    started = time.perf_counter()
    frames = parse_frames(text)
    assert time.perf_counter() - started < 0.1
    assert frames[0] == 1 and len(frames) == len(set(frames))


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([], ""),
        ([7], "7"),
        ([1, 2, 3, 5, 7, 8, 9], "1-3,5,7-9"),
        ([9, 8, 7, 5, 3, 2, 1], "1-3,5,7-9"),
        ([1, 1, 2, 2], "1-2"),
        ([1, 3, 5], "1,3,5"),
        ([-5, -4, -3, -1, 0, 1], "-5--3,-1-1"),
        (range(1, 101), "1-100"),
    ],
)
def test_format_frames(frames: list[int], expected: str) -> None:
    assert format_frames(frames) == expected


@pytest.mark.parametrize(
    "text", ["1-100,120,130-140", "-5--1,3", "1-10x2", "10,1-3", "-1048574,1048574"]
)
def test_format_then_parse_gives_the_sorted_set(text: str) -> None:
    frames = parse_frames(text)
    assert parse_frames(format_frames(frames)) == sorted(set(frames))


@pytest.mark.parametrize(
    ("frames", "size", "expected"),
    [
        ([], 3, []),
        ([1, 2, 3, 4, 5], 2, [[1, 2], [3, 4], [5]]),
        ([1, 2, 3], 3, [[1, 2, 3]]),
        ([1, 2, 3], 10, [[1, 2, 3]]),
        ([1, 2, 3], 1, [[1], [2], [3]]),
        ([10, 1, 2, 3], 2, [[10, 1], [2, 3]]),  # order given is kept
        (range(5), 2, [[0, 1], [2, 3], [4]]),
    ],
)
def test_chunk_frames(frames: list[int], size: int, expected: list[list[int]]) -> None:
    assert chunk_frames(frames, size) == expected


@pytest.mark.parametrize("size", [0, -1])
def test_chunk_frames_rejects_small_sizes(size: int) -> None:
    with pytest.raises(FrameError, match=rf"chunk size {size} is too small"):
        chunk_frames([1, 2, 3], size)
