"""The runner's line protocol, its task schema and its stats parsing; no Blender needed.

The parser tests read real output captured from Debian's Blender 3.4.1 and the
bpy 5.0.1 module (tests/data/capture.py re-captures it).
"""

from __future__ import annotations

import ast
import itertools
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from coordinator.core.protocol import RUNNER_EVENT_PREFIX
from worker_agent.events import (
    Done,
    FrameSaved,
    FrameStart,
    Malformed,
    Progress,
    Ready,
    RunnerError,
    parse_blender_progress,
    parse_line,
)
from worker_agent.in_blender import emit
from worker_agent.in_blender.progress import ProgressThrottle, StatsProgress, parse_stats
from worker_agent.in_blender.render_task import RenderTask, TaskError, parse_args

DATA = Path(__file__).resolve().parents[1] / "support" / "data"
SCENE = "Szene_Übung_日本"


def read_lines(name: str) -> list[str]:
    return (DATA / name).read_text(encoding="utf-8").splitlines()


def events_of(name: str) -> list[Any]:
    return [e for e in map(parse_line, read_lines(name)) if e is not None]


def kinds(events: list[Any]) -> list[str]:
    """Event types in order, with runs of progress collapsed into one."""
    names = [type(e).__name__ for e in events]
    return [n for i, n in enumerate(names) if n != "Progress" or names[i - 1] != "Progress"]


EXPECTED_TWO_FRAMES = [
    "Ready",
    "FrameStart",
    "Progress",
    "FrameSaved",
    "FrameStart",
    "Progress",
    "FrameSaved",
    "Done",
]


# ---------------------------------------------------------------- the contract itself


def test_runner_uses_the_protocol_marker() -> None:
    assert emit.PREFIX == RUNNER_EVENT_PREFIX


IN_BLENDER = Path(emit.__file__).parent


@pytest.mark.parametrize("path", sorted(IN_BLENDER.glob("*.py")), ids=lambda p: p.name)
def test_code_run_inside_blender_imports_only_the_standard_library_and_its_folder(
    path: Path,
) -> None:
    """Blender runs these files by path with its own Python: no third-party imports, and
    the folder's own modules only as `from worker_agent.in_blender.X import ...`, the one
    form the stanza at the top of runner.py and merge.py makes work there."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    bad = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
            if node.module.startswith("worker_agent.in_blender."):
                continue
        else:
            continue
        bad += [n for n in names if n.split(".")[0] not in sys.stdlib_module_names]
    assert bad == [], f"{path.name} imports {bad}"


@pytest.mark.parametrize(("script", "what"), [("runner.py", "task"), ("merge.py", "merge task")])
def test_scripts_run_by_path_without_the_package(tmp_path: Path, script: str, what: str) -> None:
    """A copy of the folder, run by an isolated Python (no worker_agent on its path), still
    finds its modules: the task file is read and its absence reported as an event."""
    folder = tmp_path / "loose"
    shutil.copytree(IN_BLENDER, folder, ignore=shutil.ignore_patterns("__pycache__"))
    missing = tmp_path / "nothing.json"
    proc = subprocess.run(
        [sys.executable, "-I", str(folder / script), "--bpy", str(missing)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 1, proc.stderr
    event = parse_line(proc.stdout.strip())
    assert isinstance(event, RunnerError), proc.stdout + proc.stderr
    assert event.message.startswith(f"cannot read {what} file {missing}")


def test_format_event_round_trips_through_the_parser() -> None:
    line = emit.format_event("frame_saved", frame=3, path="/tmp/Übung/日本_0003.png")
    assert line.startswith(RUNNER_EVENT_PREFIX)
    assert "\n" not in line
    assert parse_line(line) == FrameSaved(frame=3, path="/tmp/Übung/日本_0003.png")


# ---------------------------------------------------------------- real captured runs


@pytest.mark.parametrize(
    ("capture", "version"),
    [
        ("runner_blender-3.4.1_frames.txt", "3.4.1"),
        ("runner_bpy-5.0.1_frames.txt", "5.0.1"),
    ],
)
def test_two_frame_run_parses_in_order(capture: str, version: str) -> None:
    events = events_of(capture)
    assert kinds(events) == EXPECTED_TWO_FRAMES
    ready = events[0]
    assert isinstance(ready, Ready)
    assert (ready.blender, ready.scene, ready.engine) == (version, SCENE, "CYCLES")
    assert ready.camera == "Camera"
    assert ready.frames == (1, 2)
    assert ready.output.endswith("/frame_####")
    assert (ready.samples, ready.sample_offset, ready.sample_count) == (4, None, None)
    saved = [e for e in events if isinstance(e, FrameSaved)]
    assert [e.frame for e in saved] == [1, 2]
    assert [Path(e.path).name for e in saved] == ["frame_0001.png", "frame_0002.png"]
    assert all(f"Ausgabe_日本_{version}_frames" in e.path for e in saved)
    assert events[-1] == Done(frames=(1, 2))


@pytest.mark.parametrize(
    "capture", ["runner_blender-3.4.1_frames.txt", "runner_bpy-5.0.1_frames.txt"]
)
def test_progress_events_reach_the_last_sample_of_each_frame(capture: str) -> None:
    events = events_of(capture)
    progress = [e for e in events if isinstance(e, Progress)]
    for frame in (1, 2):
        samples = [(p.sample, p.samples) for p in progress if p.frame == frame]
        assert samples, f"no progress for frame {frame}"
        assert samples[-1] == (4, 4)
        assert [s for s, _ in samples] == sorted({s for s, _ in samples})
    assert progress[-1].fraction == 1.0


@pytest.mark.parametrize(
    "capture", ["runner_blender-3.4.1_range.txt", "runner_bpy-5.0.1_range.txt"]
)
def test_sample_range_run(capture: str) -> None:
    events = events_of(capture)
    assert kinds(events) == EXPECTED_TWO_FRAMES
    ready = events[0]
    assert isinstance(ready, Ready)
    assert (ready.samples, ready.sample_offset, ready.sample_count) == (8, 4, 4)
    # Both versions count a range's progress from 0 to its length.
    assert max(e.sample for e in events if isinstance(e, Progress)) == 4


def test_bpy_range_run_writes_multilayer_exr() -> None:
    ready, *rest = events_of("runner_bpy-5.0.1_range.txt")
    assert isinstance(ready, Ready) and ready.file_format == "OPEN_EXR_MULTILAYER"
    assert [Path(e.path).name for e in rest if isinstance(e, FrameSaved)] == [
        "frame_0001.exr",
        "frame_0002.exr",
    ]


def test_unknown_camera_is_one_error_event() -> None:
    events = events_of("runner_blender-3.4.1_nocamera.txt")
    assert len(events) == 1
    error = events[0]
    assert isinstance(error, RunnerError)
    assert "Kamera_fehlt" in error.message and SCENE in error.message


def test_unreadable_blend_leaves_only_blenders_own_log() -> None:
    """3.4 quits before the runner starts: the agent has the exit code and this log."""
    lines = read_lines("runner_blender-3.4.1_missing.txt")
    assert [parse_line(line) for line in lines] == [None] * len(lines)
    assert any("Cannot read file" in line and "fehlt.blend" in line for line in lines)


def test_ordinary_blender_output_is_not_an_event() -> None:
    lines = read_lines("runner_blender-3.4.1_frames.txt")
    plain = [line for line in lines if RUNNER_EVENT_PREFIX not in line]
    assert len(plain) > 50
    assert [parse_line(line) for line in plain] == [None] * len(plain)


# ---------------------------------------------------------------- malformed lines


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("{not json", "not JSON"),
        ("[1, 2]", "not an object"),
        ('{"frame": 1}', "not an object"),
        ('{"event": "explode"}', "unknown event"),
        ('{"event": "frame_start"}', "'frame' must be an integer"),
        ('{"event": "frame_start", "frame": true}', "'frame' must be an integer"),
        ('{"event": "frame_saved", "frame": 1, "path": 7}', "'path' must be a string"),
        ('{"event": "done", "frames": "1-2"}', "'frames' must be a list"),
    ],
)
def test_malformed_marker_lines(text: str, reason: str) -> None:
    event = parse_line(RUNNER_EVENT_PREFIX + text)
    assert isinstance(event, Malformed)
    assert reason in event.reason
    assert event.line == text


def test_marker_after_unterminated_blender_text_still_parses() -> None:
    stats = "Fra:1 Mem:9.75M | Sample 1/4"
    line = stats + RUNNER_EVENT_PREFIX + '{"event":"frame_start","frame":1}'
    assert parse_line(line) == FrameStart(frame=1)


def test_unknown_fields_are_ignored() -> None:
    line = emit.format_event("done", frames=[1], seconds=2.5)
    assert parse_line(line) == Done(frames=(1,))


def test_error_event_keeps_the_runner_traceback() -> None:
    line = emit.format_event("error", message="runner failed", traceback="Traceback ...")
    assert parse_line(line) == RunnerError(message="runner failed", traceback="Traceback ...")


# ---------------------------------------------------------------- Blender's own stats


def test_classic_stats_lines_of_3_4() -> None:
    lines = read_lines("runner_blender-3.4.1_frames.txt")
    found = [p for p in map(parse_blender_progress, lines) if p is not None]
    assert [(p.frame, p.sample, p.samples) for p in found] == [
        (1, 0, 4),
        (1, 1, 4),
        (1, 4, 4),
        (2, 0, 4),
        (2, 1, 4),
        (2, 4, 4),
    ]


def test_each_3_4_progress_event_follows_the_stats_line_it_comes_from() -> None:
    lines = read_lines("runner_blender-3.4.1_frames.txt")
    for before, line in itertools.pairwise(lines):
        event = parse_line(line)
        if isinstance(event, Progress):
            assert parse_blender_progress(before) == event


@pytest.mark.parametrize(
    "line",
    [
        "Fra:1 Mem:9.00M (Peak 10.34M) | Time:00:00.00 | Mem:0.00M, Peak:0.00M | "
        "Scene, ViewLayer | Synchronizing object | Box",
        "Saved: '/tmp/farm-capture/frame_0001.png'",
        " Time: 00:00.34 (Saving: 00:00.24)",
        "Sample 1/4 without the Fra: prefix",
    ],
)
def test_other_lines_carry_no_classic_progress(line: str) -> None:
    assert parse_blender_progress(line) is None


def test_runner_reads_the_stats_texts_5_0_passes_to_its_handler() -> None:
    texts = read_lines("render_stats_bpy-5.0.1.txt")
    found = [p for p in map(parse_stats, texts) if p is not None]
    assert [(p.frame, p.sample, p.samples) for p in found] == [
        (None, 0, 4),
        (None, 1, 4),
        (None, 4, 4),
    ]


def test_runner_reads_the_frame_from_3_4_stats_lines() -> None:
    lines = read_lines("runner_blender-3.4.1_frames.txt")
    found = [p for p in map(parse_stats, lines) if p is not None]
    assert {(p.frame, p.sample) for p in found} >= {(1, 4), (2, 4)}


# Captured from Debian's 3.4.1 rendering an EEVEE scene with `blender -b` (software GL).
EEVEE_3_4_LINE = "Fra:1 Mem:10.77M (Peak 11.85M) | Time:00:10.22 | Rendering 51 / 64 samples"


def test_eevee_legacy_stats() -> None:
    assert parse_stats(EEVEE_3_4_LINE) == StatsProgress(frame=1, sample=51, samples=64)
    assert parse_blender_progress(EEVEE_3_4_LINE) == Progress(frame=1, sample=51, samples=64)


# ---------------------------------------------------------------- throttle


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_throttle_limits_events_per_frame() -> None:
    clock = FakeClock()
    throttle = ProgressThrottle(min_interval=0.25, clock=clock)
    assert throttle.offer(1, 0, 100)  # the first update of a frame passes
    assert not throttle.offer(1, 0, 100)  # never the same sample twice
    clock.now += 0.1
    assert not throttle.offer(1, 5, 100)  # too soon
    clock.now += 0.2
    assert throttle.offer(1, 9, 100)
    clock.now += 0.01
    assert throttle.offer(1, 100, 100)  # the last sample always passes
    assert not throttle.offer(1, 100, 100)
    assert throttle.offer(2, 0, 100)  # a new frame starts afresh


def test_throttle_at_most_four_per_second() -> None:
    clock = FakeClock()
    throttle = ProgressThrottle(min_interval=0.25, clock=clock)
    passed = 0
    for sample in range(1, 1000):
        clock.now += 0.01  # 100 stats updates a second, for 10 s
        passed += throttle.offer(1, sample, 1000)
    assert 38 <= passed <= 41


# ---------------------------------------------------------------- task schema


def task_json(**fields: Any) -> dict[str, Any]:
    return {"blend": "/w/Übung.blend", "frames": [1, 2], "output_dir": "/w/out", **fields}


def test_task_defaults_and_round_trip() -> None:
    task = RenderTask.from_json(task_json())
    assert task.frames == (1, 2)
    assert task.scene is None and task.file_format is None and not task.allow_scripts
    full = RenderTask.from_json(
        task_json(
            scene=SCENE,
            camera="Camera",
            output_name="frame_####",
            file_format="OPEN_EXR_MULTILAYER",
            use_file_extension=True,
            device="OPTIX",
            threads=4,
            samples=16,
            sample_offset=8,
            sample_count=4,
            seed=3,
            disable_denoise=True,
            disable_compositor=True,
            region=[0, 0.5, 0.5, 1],
            crop_to_region=True,
            allow_scripts=True,
        )
    )
    assert RenderTask.from_json(full.to_json()) == full
    assert full.region == (0.0, 0.5, 0.5, 1.0)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"framez": [1]}, "unknown task field(s): framez"),
        ({"frames": []}, "no frames"),
        ({"frames": [1, "2"]}, "list of integers"),
        ({"frames": [True]}, "list of integers"),
        ({"blend": "rel/file.blend"}, "'blend' must be an absolute path"),
        ({"output_dir": "out"}, "'output_dir' must be an absolute path"),
        ({"samples": 0}, "'samples' must be at least 1"),
        ({"threads": True}, "'threads' has the wrong type"),
        ({"device": "TPU"}, "device 'TPU' is not one of"),
        ({"file_format": "FFMPEG"}, "movie format FFMPEG"),
        ({"sample_offset": 4}, "sample_offset and sample_count go together"),
        ({"samples": 8, "sample_offset": 4, "sample_count": 8}, "past the total"),
        ({"region": [0, 0, 2, 1]}, "not inside 0..1"),
        ({"region": [0, 0, 1]}, "'region' must be"),
        ({"disable_denoise": None}, "'disable_denoise' has the wrong type"),
    ],
)
def test_bad_tasks_say_what_is_wrong(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(TaskError, match=re.escape(message)):
        RenderTask.from_json(task_json(**fields))


def test_task_requires_blend_frames_and_output_dir() -> None:
    with pytest.raises(TaskError, match="'output_dir' is required"):
        RenderTask.from_json({"blend": "/a.blend", "frames": [1]})


def test_parse_args_of_both_invocations() -> None:
    binary = ["blender", "-b", "--factory-startup", "-Y", "f.blend", "--python", "r.py", "--", "t"]
    assert parse_args(binary) == (False, "t")
    assert parse_args(["runner.py", "--bpy", "/t.json"]) == (True, "/t.json")
    with pytest.raises(TaskError, match="usage"):
        parse_args(["runner.py", "/t.json"])
    with pytest.raises(TaskError, match=re.escape("one TASK.json path")):
        parse_args(["runner.py", "--bpy"])
