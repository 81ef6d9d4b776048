"""Finding, probing and running Blender: the runner in real Blender 3.4 and bpy 5.0.

Renders are tiny (64x48, 4 samples, about a second a frame); the cancel test
uses a slow scene and kills it mid-render.
"""

from __future__ import annotations

import struct
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import blendgen
from worker_agent.blender import RUNNER_PATH, RenderProcess, build_command, write_task
from worker_agent.devices import probe_render
from worker_agent.events import (
    Done,
    FrameSaved,
    FrameStart,
    Progress,
    Ready,
    RunnerError,
    RunnerEvent,
)
from worker_agent.in_blender.render_task import RenderTask
from worker_agent.probe import BlenderInfo, BlenderNotFound, NotABlender, find_blender, probe

SCENE = "Szene_Übung_日本"


# ---------------------------------------------------------------- helpers


@dataclass
class Run:
    """What one RenderProcess printed and returned."""

    code: int
    lines: list[str] = field(default_factory=list)
    events: list[RunnerEvent] = field(default_factory=list)
    seconds: float = 0.0

    def of(self, kind: type) -> list[Any]:
        return [e for e in self.events if isinstance(e, kind)]

    @property
    def log(self) -> str:
        return "\n".join(self.lines)


def render(info: BlenderInfo, tmp: Path, *, timeout: float = 60, **fields: Any) -> Run:
    tmp.mkdir(parents=True, exist_ok=True)
    fields.setdefault("output_dir", str(tmp / "out"))
    fields.setdefault("disable_denoise", True)
    task = RenderTask.from_json(fields)
    task_path = write_task(task, tmp / "task.json")
    command = build_command(
        info, task_json_path=task_path, blend_path=task.blend, allow_scripts=False
    )
    run = Run(code=-999)

    def on_line(line: str, event: RunnerEvent | None) -> None:
        run.lines.append(line)
        if event is not None:
            run.events.append(event)

    started = time.monotonic()
    with RenderProcess(command, on_line=on_line) as process:
        run.code = process.wait(timeout)
    run.seconds = time.monotonic() - started
    return run


def kinds(events: list[RunnerEvent]) -> list[str]:
    """Event types in order, with runs of progress collapsed into one."""
    names = [type(e).__name__ for e in events]
    return [n for i, n in enumerate(names) if n != "Progress" or names[i - 1] != "Progress"]


def group_members(pgid: int) -> list[int]:
    """Live processes in a process group, read from /proc (zombies count as gone)."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        state, _ppid, group = stat.rsplit(")", 1)[1].split()[:3]
        if int(group) == pgid and state != "Z":
            members.append(int(entry.name))
    return members


@pytest.fixture(scope="module")
def blender34() -> BlenderInfo:
    return probe(blendgen.DEBIAN_BLENDER)


@pytest.fixture(scope="module")
def scene34(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("Übung_3.4")
    return blendgen.make_scene(root / "szene.blend", scene_name=SCENE, texture=root / "t/k.png")


# ---------------------------------------------------------------- find and probe (no Blender)


def test_find_blender_prefers_explicit_then_env_then_path(tmp_path: Path) -> None:
    fake = tmp_path / "bin" / "blender"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    other = tmp_path / "other-blender"
    other.write_text("#!/bin/sh\n")
    other.chmod(0o755)
    env = {"PATH": str(fake.parent)}
    assert find_blender(None, env=env) == str(fake)
    assert find_blender(None, env={**env, "BLENDER": str(other)}) == str(other)
    assert find_blender(str(other), env={**env, "BLENDER": "/nope"}) == str(other)


def test_find_blender_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(BlenderNotFound, match=r"install Blender.*BLENDER=.*--blender"):
        find_blender(None, env={"PATH": str(tmp_path)})
    with pytest.raises(BlenderNotFound, match=r"\$BLENDER names '/no/such/blender'"):
        find_blender(None, env={"PATH": str(tmp_path), "BLENDER": "/no/such/blender"})


def test_probe_rejects_other_programs() -> None:
    with pytest.raises(NotABlender, match=r"is not a usable Blender.*Blender version"):
        probe("/bin/true")
    with pytest.raises(NotABlender, match="No module named 'bpy'"):
        probe(sys.executable)  # the test venv's python has no bpy


def test_build_command_for_both_kinds() -> None:
    binary = BlenderInfo("3.4.1", (3, 4, 1), "/usr/bin/blender", "binary")
    assert build_command(
        binary, task_json_path="/w/t.json", blend_path="/w/f.blend", allow_scripts=False
    ) == [
        "/usr/bin/blender",
        "-b",
        "--factory-startup",
        "-Y",
        "/w/f.blend",
        "--python-exit-code",
        "1",
        "--python",
        str(RUNNER_PATH),
        "--",
        "/w/t.json",
    ]
    trusted = build_command(
        binary, task_json_path="/w/t.json", blend_path="/w/f.blend", allow_scripts=True
    )
    assert trusted[3] == "-y"
    module = BlenderInfo("5.0.1", (5, 0, 1), "/v/bin/python", "bpy-module")
    assert build_command(
        module, task_json_path="/w/t.json", blend_path="/w/f.blend", allow_scripts=False
    ) == ["/v/bin/python", str(RUNNER_PATH), "--bpy", "/w/t.json"]


# ---------------------------------------------------------------- RenderProcess (no Blender)


def test_render_process_delivers_lines_and_events_in_order() -> None:
    script = (
        "import sys\n"
        "print('Fra:1 Übung', flush=True)\n"
        'print(\'@@FARM@@ {"event":"frame_start","frame":1}\', flush=True)\n'
        "print('on stderr', file=sys.stderr, flush=True)\n"
        "sys.exit(3)\n"
    )
    got: list[tuple[str, RunnerEvent | None]] = []
    process = RenderProcess(
        [sys.executable, "-c", script], on_line=lambda line, ev: got.append((line, ev))
    )
    assert process.wait(10) == 3
    assert got == [
        ("Fra:1 Übung", None),
        ('@@FARM@@ {"event":"frame_start","frame":1}', FrameStart(frame=1)),
        ("on stderr", None),
    ]


def test_render_process_survives_a_failing_callback() -> None:
    def explode(line: str, event: RunnerEvent | None) -> None:
        raise ValueError(line)

    process = RenderProcess([sys.executable, "-c", "print('a'); print('b')"], on_line=explode)
    assert process.wait(10) == 0


def test_cancel_kills_a_stubborn_process_and_its_children() -> None:
    """SIGTERM ignored, a child in the same group: both gone after the grace period."""
    script = (
        "import signal, subprocess, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "print('ready', child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    ready = threading.Event()
    process = RenderProcess([sys.executable, "-c", script], on_line=lambda line, ev: ready.set())
    assert ready.wait(10)
    assert len(group_members(process.pid)) == 2
    started = time.monotonic()
    code = process.cancel(grace=0.3)
    assert time.monotonic() - started < 1.5
    assert code == -9
    assert group_members(process.pid) == []


def test_render_process_gives_blender_a_private_tmpdir_and_removes_it() -> None:
    lines: list[str] = []
    process = RenderProcess(
        [sys.executable, "-c", "import os; print(os.environ['TMPDIR'])"],
        on_line=lambda line, ev: lines.append(line),
    )
    assert process.wait(10) == 0
    assert Path(lines[0]).name.startswith("farm-blender-")
    assert not Path(lines[0]).exists()


# ---------------------------------------------------------------- real Blender 3.4


@pytest.mark.blender
def test_probe_debian_blender(blender34: BlenderInfo) -> None:
    assert blender34.kind == "binary"
    assert blender34.version_tuple[:2] >= (3, 1)
    assert blender34.version == ".".join(map(str, blender34.version_tuple))


@pytest.mark.blender
def test_two_frames(blender34: BlenderInfo, scene34: Path, tmp_path: Path) -> None:
    out = tmp_path / "Ausgabe_日本"
    run = render(
        blender34,
        tmp_path,
        blend=str(scene34),
        frames=[1, 2],
        output_dir=str(out),
        output_name="shot_",
    )
    assert run.code == 0, run.log
    # No '#' in the name: Blender appends the 4-digit frame, as a local animation render.
    names = ["shot_0001.png", "shot_0002.png"]
    assert sorted(p.name for p in out.iterdir()) == names
    assert kinds(run.events) == [
        "Ready",
        "FrameStart",
        "Progress",
        "FrameSaved",
        "FrameStart",
        "Progress",
        "FrameSaved",
        "Done",
    ]
    ready = run.of(Ready)[0]
    assert (ready.scene, ready.engine, ready.samples, ready.camera) == (
        SCENE,
        "CYCLES",
        4,
        "Camera",
    )
    assert [(p.frame, p.sample, p.samples) for p in run.of(Progress)][-1] == (2, 4, 4)
    assert all(p.samples == 4 for p in run.of(Progress))
    assert [(e.frame, e.path) for e in run.of(FrameSaved)] == [
        (1, str(out / names[0])),
        (2, str(out / names[1])),
    ]
    assert run.of(Done) == [Done(frames=(1, 2))]
    # The box moves: the frames differ.
    assert blendgen.png_pixels(out / names[0]) != blendgen.png_pixels(out / names[1])


@pytest.mark.blender
def test_sample_ranges_render_different_samples(
    blender34: BlenderInfo, scene34: Path, tmp_path: Path
) -> None:
    pixels = []
    for offset in (0, 4):
        run = render(
            blender34,
            tmp_path / str(offset),
            blend=str(scene34),
            frames=[3],
            output_name="frame_##",
            samples=8,
            sample_offset=offset,
            sample_count=4,
            seed=7,
        )
        assert run.code == 0, run.log
        ready = run.of(Ready)[0]
        assert (ready.samples, ready.sample_offset, ready.sample_count) == (8, offset, 4)
        assert run.of(Progress)[-1].samples == 4
        (saved,) = run.of(FrameSaved)
        assert Path(saved.path).name == "frame_03.png"
        pixels.append(blendgen.png_pixels(saved.path))
    assert pixels[0] != pixels[1]


@pytest.mark.blender
def test_region_camera_and_format(blender34: BlenderInfo, scene34: Path, tmp_path: Path) -> None:
    run = render(
        blender34,
        tmp_path,
        blend=str(scene34),
        frames=[1],
        camera="SideCamera",
        region=[0, 0, 0.5, 0.5],
        crop_to_region=True,
        file_format="BMP",
        threads=1,
    )
    assert run.code == 0, run.log
    assert run.of(Ready)[0].camera == "SideCamera"
    (saved,) = run.of(FrameSaved)
    assert Path(saved.path).name == "0001.bmp"
    header = Path(saved.path).read_bytes()[:26]
    assert header[:2] == b"BM"
    assert struct.unpack("<ii", header[18:26]) == (32, 24)  # half of 64x48, cropped


@pytest.mark.blender
def test_scene_that_writes_a_movie_is_refused(blender34: BlenderInfo, tmp_path: Path) -> None:
    blend = blendgen.make_scene(tmp_path / "film.blend", file_format="FFMPEG")
    run = render(blender34, tmp_path, blend=str(blend), frames=[1])
    assert run.code == 1
    (error,) = run.of(RunnerError)
    assert "movie (FFMPEG)" in error.message


@pytest.mark.blender
def test_unknown_scene_is_an_error_event(
    blender34: BlenderInfo, scene34: Path, tmp_path: Path
) -> None:
    run = render(blender34, tmp_path, blend=str(scene34), frames=[1], scene="Nope")
    assert run.code == 1
    (error,) = run.of(RunnerError)
    assert "scene 'Nope' not found" in error.message and SCENE in error.message
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


@pytest.mark.blender
@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "Cannot read file"), (b"not a blend file", "File format is not supported")],
)
def test_missing_or_broken_blend_fails_readably(
    blender34: BlenderInfo, tmp_path: Path, content: bytes | None, says: str
) -> None:
    blend = tmp_path / "kaputt.blend"
    if content is not None:
        blend.write_bytes(content)
    run = render(blender34, tmp_path, blend=str(blend), frames=[1])
    assert run.code != 0
    assert says in run.log and "kaputt.blend" in run.log
    assert not run.of(FrameSaved)


@pytest.mark.blender
def test_cancel_mid_render(blender34: BlenderInfo, tmp_path: Path) -> None:
    slow = blendgen.make_scene(tmp_path / "slow.blend", samples=20000, resolution=(480, 360))
    task = RenderTask.from_json(
        {"blend": str(slow), "frames": [1], "output_dir": str(tmp_path / "out")}
    )
    command = build_command(
        blender34,
        task_json_path=write_task(task, tmp_path / "task.json"),
        blend_path=slow,
        allow_scripts=False,
    )
    sampling = threading.Event()

    def on_line(line: str, event: RunnerEvent | None) -> None:
        if isinstance(event, Progress):
            sampling.set()

    process = RenderProcess(command, on_line=on_line)
    try:
        assert sampling.wait(30), "the render never started sampling"
        assert group_members(process.pid)
        started = time.monotonic()
        code = process.cancel(grace=0.5)
        took = time.monotonic() - started
        print(f"cancel took {took:.3f} s")
    finally:
        process.cancel()
    assert took < 1.5
    assert code != 0
    assert group_members(process.pid) == []
    assert not (tmp_path / "out" / "0001.png").exists()


# ---------------------------------------------------------------- bpy 5.0 module


@pytest.mark.bpy
def test_two_frames_with_bpy_module(tmp_path: Path) -> None:
    info = probe(str(blendgen.BPY_PYTHON))
    assert (info.kind, info.version_tuple[:2]) == ("bpy-module", (5, 0))
    blend = blendgen.make_scene(
        tmp_path / "Übung_5.0.blend",
        blender=blendgen.BPY_PYTHON,
        scene_name=SCENE,
        texture=tmp_path / "t" / "k.png",
    )
    out = tmp_path / "Ausgabe_日本"
    run = render(
        info,
        tmp_path,
        blend=str(blend),
        frames=[1, 2],
        scene=SCENE,
        output_dir=str(out),
        output_name="frame_####",
    )
    assert run.code == 0, run.log
    assert kinds(run.events) == [
        "Ready",
        "FrameStart",
        "Progress",
        "FrameSaved",
        "FrameStart",
        "Progress",
        "FrameSaved",
        "Done",
    ]
    assert run.of(Ready)[0].blender == info.version
    assert sorted(p.name for p in out.iterdir()) == ["frame_0001.png", "frame_0002.png"]
    assert run.of(Progress)[-1] == Progress(frame=2, sample=4, samples=4)


@pytest.mark.bpy
def test_bpy_module_reports_a_missing_blend(tmp_path: Path) -> None:
    info = BlenderInfo("5.0.1", (5, 0, 1), str(blendgen.BPY_PYTHON), "bpy-module")
    run = render(info, tmp_path, blend=str(tmp_path / "fehlt.blend"), frames=[1])
    assert run.code == 1
    (error,) = run.of(RunnerError)
    assert "fehlt.blend" in error.message


@pytest.mark.blender
@pytest.mark.bpy
@pytest.mark.parametrize("which", ["binary", "bpy-module"])
def test_the_probe_lists_cycles_for_both_kinds_of_blender(which: str) -> None:
    # bpy 5's RenderEngine subclasses include HydraRenderEngine, which has no
    # bl_idname: reading it once made the probe report no engine past the
    # built-in ones, so `--need engine=CYCLES` never matched a bpy worker.
    exe = blendgen.DEBIAN_BLENDER if which == "binary" else str(blendgen.BPY_PYTHON)
    info = probe(exe)
    assert info.kind == which
    devices, engines = probe_render(info)
    assert "CPU" in devices
    assert {"CYCLES", "BLENDER_WORKBENCH"} <= set(engines), engines
