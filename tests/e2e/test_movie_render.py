"""Movie outputs end to end: a scene set to FFmpeg, rendered by two real workers (Blender 3.4).

How the pictures are judged. A movie cannot be compared byte for byte (the
encoder's choices and Blender's dither differ run to run), so both movies, the
farm's and a local `blender -b -a` render's of the same scene, are decoded by
Blender itself (a movie strip rendered to 8-bit PNGs with the Standard view
and no dither) and compared frame by frame: the mean absolute difference per
colour channel, in 0-255 levels, must stay under MEAN_TOLERANCE, and under the
codec's own error (the local movie against the same frames rendered to PNG).
Measured on Debian's 3.4.1 with H.264 at "high quality": farm against local
0.01-1.4 levels; the codec's own error 2.9-3.5 levels.

The sound is judged by the container's tracks (tests/support/mp4.py reads the
boxes: an audio track, and its duration against the local movie's) and by
Blender's mixdown of the movie's audio: the tone of the scene's sound strip is
there, as loud as in the local movie.
"""

from __future__ import annotations

import json
import math
import os
import struct
import subprocess
import wave
from pathlib import Path
from typing import Any

import pytest
import requests

from coordinator.client.http import FarmClient
from tests.support.blendgen import DEBIAN_BLENDER, make_scene, png_pixels, png_size
from tests.support.localfarm import LocalFarm, farm_fixture
from tests.support.moviedecode import decode_movies
from tests.support.mp4 import read_movie

pytestmark = [pytest.mark.blender, pytest.mark.slow]

MEAN_TOLERANCE = 2.0  # mean |farm - local| per colour channel, in 0-255 levels
PREVIEW_TOLERANCE = 5.0  # mean |preview - delivered frame|: VP9 at medium quality (2.1-2.7)
FRAMES = 6
FPS = 24  # Blender's default; the QuickTime shot runs at QT_FPS, which the farm must keep
QT_FPS = 30

# Runs inside Blender: sets each .blend's movie output (and sound) and saves it.
SETUP_SCRIPT = """
import json, sys
import bpy
for job in json.loads(open(sys.argv[-1]).read()):
    bpy.ops.wm.open_mainfile(filepath=job["blend"])
    scene = bpy.context.scene
    render = scene.render
    render.image_settings.file_format = "FFMPEG"
    render.ffmpeg.format = job["container"]
    render.ffmpeg.codec = "H264"
    render.ffmpeg.constant_rate_factor = "HIGH"
    render.ffmpeg.audio_codec = job["audio_codec"]
    render.fps = job["fps"]
    if job["sound"]:
        editor = scene.sequence_editor_create()
        editor.sequences.new_sound("tone", job["sound"], 1, scene.frame_start)
    bpy.ops.wm.save_as_mainfile(filepath=job["blend"])
"""


def blender_script(script: str, data: Any, folder: Path) -> None:
    path, args = folder / "script.py", folder / "args.json"
    path.write_text(script)
    args.write_text(json.dumps(data))
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-exit-code", "1"]
    subprocess.run(
        [*command, "--python", str(path), "--", str(args)],
        check=True,
        timeout=300,
        capture_output=True,
    )


def write_tone(path: Path, *, seconds: float = 1.0, rate: int = 48000) -> Path:
    """A 440 Hz tone, mono 16-bit, made with the standard library."""
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        samples = (
            int(12000 * math.sin(2 * math.pi * 440 * i / rate)) for i in range(int(seconds * rate))
        )
        w.writeframes(b"".join(struct.pack("<h", s) for s in samples))
    return path


def rms(path: Path) -> float:
    with wave.open(str(path), "rb") as w:
        data = w.readframes(w.getnframes())
    samples = struct.unpack(f"<{len(data) // 2}h", data)
    return math.sqrt(sum(s * s for s in samples) / max(len(samples), 1))


def mean_difference(a: Path, b: Path) -> float:
    pa, pb = png_pixels(a), png_pixels(b)
    assert len(pa) == len(pb), f"{a} and {b} differ in size"
    return sum(abs(x - y) for x, y in zip(pa, pb, strict=True)) / len(pa)


class Shot:
    """A scene set to a movie format, with its local render (what the artist would get)."""

    def __init__(self, folder: Path, *, container: str, sound: bool, fps: int = FPS) -> None:
        self.folder, self.fps = folder, fps
        self.blend = make_scene(folder / "shot.blend", frames=(1, FRAMES), file_format="FFMPEG")
        self.sound = write_tone(folder / "tone.wav") if sound else None
        self.container = container
        self.local = folder / "local"

    def setup(self) -> dict[str, Any]:
        return {
            "blend": str(self.blend),
            "container": self.container,
            "audio_codec": "AAC" if self.sound else "NONE",
            "sound": "//tone.wav" if self.sound else None,
            "fps": self.fps,
        }

    def render_locally(self) -> None:
        """`blender -b shot.blend -a` as the artist runs it (output moved beside), plus the
        same frames as PNGs, to measure the codec's own error."""
        for args in (["-o", f"{self.local}/frame_"], ["-o", f"{self.folder}/png/", "-F", "PNG"]):
            subprocess.run(
                [DEBIAN_BLENDER, "-b", str(self.blend), *args, "-a"],
                check=True,
                timeout=300,
                capture_output=True,
            )

    def files(self) -> dict[str, Path]:
        files = {"shot.blend": self.blend}
        if self.sound:
            files["tone.wav"] = self.sound
        return files


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Shot]:
    """An H.264 MP4 without sound and an H.264 QuickTime with AAC sound at 30 fps;
    rendered locally."""
    root = tmp_path_factory.mktemp("shots")
    made = {
        "mp4": Shot(root / "mp4", container="MPEG4", sound=False),
        "mov": Shot(root / "mov", container="QUICKTIME", sound=True, fps=QT_FPS),
    }
    blender_script(SETUP_SCRIPT, [s.setup() for s in made.values()], root)
    for shot in made.values():
        shot.render_locally()
    return made


farm = farm_fixture(workers=("w1", "w2"), blender=DEBIAN_BLENDER, lease_seconds=10.0)


def submit(client: FarmClient, shot: Shot, out: Path) -> int:
    hashes, _ = client.upload_project(shot.files())
    job = client.submit(
        {
            "name": f"movie {shot.container}",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            "settings": {
                "frames": f"1-{FRAMES}",
                "chunk_size": 2,
                "output": str(out / "frame_"),
                "file_format": "FFMPEG",
            },
        }
    )
    return int(job["id"])


def decode(pairs: list[tuple[Path, Path, Path | None]], folder: Path) -> None:
    decode_movies(pairs, folder)


def compare_frames(farm_frames: Path, local_frames: Path, lossless: Path) -> list[float]:
    names = sorted(os.listdir(local_frames))
    assert len(names) == FRAMES and sorted(os.listdir(farm_frames)) == names
    measured = []
    for name in names:
        farm_error = mean_difference(farm_frames / name, local_frames / name)
        codec_error = mean_difference(local_frames / name, lossless / name)
        print(f"{name}: farm vs local {farm_error:.3f} levels; codec's own error {codec_error:.3f}")
        assert farm_error <= MEAN_TOLERANCE
        assert farm_error < codec_error
        measured.append(farm_error)
    return measured


def test_h264_mp4_on_two_workers_matches_a_local_render(
    farm: LocalFarm, shots: dict[str, Shot], tmp_path: Path
) -> None:
    shot, out = shots["mp4"], tmp_path / "out"
    client = farm.client()
    job_id = submit(client, shot, out)
    job = farm.wait_for_job(job_id, timeout=240)
    assert job["status"] == "completed", job["status_reason"]
    name = "frame_0001-0006.mp4"
    assert os.listdir(shot.local) == [name]  # what Blender itself calls it
    assert os.listdir(out) == [name]  # one file, no intermediate frames
    assert [o["name"] for o in client.outputs(job_id)] == [name]
    tasks = client.job(job_id)["tasks"]
    assert [t["kind"] for t in tasks] == ["render"] * 3 + ["encode"]
    assert len({t["worker_id"] for t in tasks}) == 2, "both workers should have worked"
    assert read_movie(out / name).track("soun") is None

    decode(
        [(out / name, tmp_path / "farm", None), (shot.local / name, tmp_path / "local", None)],
        tmp_path,
    )
    compare_frames(tmp_path / "farm", tmp_path / "local", shot.folder / "png")

    # Regenerate keeps the rendered frames and encodes the movie again.
    before = (out / name).stat().st_mtime_ns
    regenerated = client.regenerate_job(job_id)["regenerated"]
    assert (regenerated["tasks"], regenerated["kept"]) == (4, 3)
    job = farm.wait_for_job(job_id, timeout=120)
    assert job["status"] == "completed", job["status_reason"]
    encode = [t for t in client.job(job_id)["tasks"] if t["kind"] == "encode"]
    assert len(encode) == 1 and encode[0]["status"] == "completed"
    assert "kept" not in (encode[0]["activity"] or "")
    assert os.listdir(out) == [name] and (out / name).stat().st_mtime_ns != before


def test_quicktime_with_sound_has_the_scenes_audio(
    farm: LocalFarm, shots: dict[str, Shot], tmp_path: Path
) -> None:
    shot, out = shots["mov"], tmp_path / "out"
    job_id = submit(farm.client(), shot, out)
    job = farm.wait_for_job(job_id, timeout=240)
    assert job["status"] == "completed", job["status_reason"]
    name = "frame_0001-0006.mov"
    assert os.listdir(shot.local) == [name] and os.listdir(out) == [name]

    ours, theirs = read_movie(out / name), read_movie(shot.local / name)
    audio, local_audio = ours.track("soun"), theirs.track("soun")
    assert audio is not None and local_audio is not None, ours
    print(f"audio: farm {audio.seconds:.3f} s, local {local_audio.seconds:.3f} s")
    assert abs(audio.seconds - local_audio.seconds) <= 0.03  # about one AAC frame
    # the scene's 30 fps, not the default 24: 6 frames last 0.2 s, not 0.25 s
    assert abs(ours.seconds - FRAMES / QT_FPS) <= 0.02, ours.seconds
    assert abs(ours.seconds - theirs.seconds) <= 0.02, (ours.seconds, theirs.seconds)

    farm_wav, local_wav = tmp_path / "farm.wav", tmp_path / "local.wav"
    decode(
        [
            (out / name, tmp_path / "farm", farm_wav),
            (shot.local / name, tmp_path / "local", local_wav),
        ],
        tmp_path,
    )
    loudness, local_loudness = rms(farm_wav), rms(local_wav)
    print(f"audio RMS: farm {loudness:.0f}, local {local_loudness:.0f}")
    assert loudness > 1000 and abs(loudness - local_loudness) <= 0.05 * local_loudness
    compare_frames(tmp_path / "farm", tmp_path / "local", shot.folder / "png")


def rgb(path: Path) -> bytes:
    """A PNG's pixels without alpha, to compare an RGBA frame with a decoded movie's RGB."""
    pixels = png_pixels(path)
    width, height = png_size(path)
    if len(pixels) == width * height * 3:
        return pixels
    return bytes(b for i, b in enumerate(pixels) if i % 4 != 3)


def test_an_image_sequence_gets_a_preview_made_by_a_workers_blender(
    farm: LocalFarm, tmp_path: Path
) -> None:
    """A job that names no preview gets one (on by default). The scene's own format (PNG,
    unset in the job): the preview finds the frames by the names Blender gave them,
    encodes them to WebM and keeps it on the farm."""
    blend = make_scene(tmp_path / "seq" / "shot.blend", frames=(1, FRAMES))
    client, out = farm.client(), tmp_path / "out"
    hashes, _ = client.upload_project({"shot.blend": blend})
    job = client.submit(
        {
            "name": "image sequence",
            "type": "blender-render",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            "settings": {
                "frames": f"1-{FRAMES}",
                "chunk_size": 3,
                "output": str(out / "f_####"),  # no preview setting: on by default
            },
        }
    )
    done = farm.wait_for_job(job["id"], timeout=240)
    assert done["status"] == "completed", done["status_reason"]
    frames = [f"f_000{f}.png" for f in range(1, FRAMES + 1)]
    assert sorted(os.listdir(out)) == frames  # the preview is not delivered
    kinds = [t["kind"] for t in client.job(job["id"])["tasks"]]
    assert kinds == ["render", "render", "preview"]

    answer = requests.get(
        f"{client.url}/api/v1/jobs/{job['id']}/preview",
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "video/webm"
    movie = tmp_path / "preview.webm"
    movie.write_bytes(answer.content)
    decode([(movie, tmp_path / "decoded", None)], tmp_path)
    decoded = sorted(os.listdir(tmp_path / "decoded"))
    assert len(decoded) == FRAMES
    for name, frame in zip(decoded, frames, strict=True):
        assert png_size(tmp_path / "decoded" / name) == (64, 48)
        a, b = rgb(tmp_path / "decoded" / name), rgb(out / frame)
        difference = sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
        print(f"preview {name} vs delivered {frame}: {difference:.2f} levels")
        assert difference <= PREVIEW_TOLERANCE
