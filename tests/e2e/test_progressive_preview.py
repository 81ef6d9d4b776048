"""A progressive job's preview video end to end: real coordinator, a real worker
with Debian's Blender 3.4, a tiny Cycles scene.

The preview must arrive after the last merges, be a WebM that Blender decodes
(so a browser's VP9 decoder has a real file to play; the dashboard's player is
tests/browser/test_preview_video.py's), hold every frame at the render's size,
and show the finished frames: each decoded frame within PREVIEW_TOLERANCE of
the delivered one (VP9 at medium quality measures 2-3 levels, as in
test_movie_render.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import requests

from tests.support.blendgen import DEBIAN_BLENDER, make_scene, png_pixels, png_size
from tests.support.localfarm import LocalFarm, farm_fixture
from tests.support.moviedecode import decode_movies

pytestmark = [pytest.mark.blender, pytest.mark.slow]

FRAMES = 3
PREVIEW_TOLERANCE = 5.0  # mean |preview - delivered frame| per colour channel, 0-255 levels
WEBM_MAGIC = b"\x1a\x45\xdf\xa3"  # EBML, the container WebM is made of


def decode(movie: Path, out: Path) -> list[Path]:
    """The movie's frames as Blender's own decoder gives them."""
    decode_movies([(movie, out, None)], movie.parent)
    return sorted(out.iterdir())


def rgb(path: Path) -> bytes:
    """A PNG's pixels without alpha, to compare an RGBA frame with a decoded movie's RGB."""
    pixels = png_pixels(path)
    width, height = png_size(path)
    if len(pixels) == width * height * 3:
        return pixels
    return bytes(b for i, b in enumerate(pixels) if i % 4 != 3)


farm = farm_fixture(workers=("w1",), blender=DEBIAN_BLENDER, lease_seconds=10.0)


def test_a_progressive_sequence_gets_a_playable_preview_of_its_finished_frames(
    farm: LocalFarm, tmp_path: Path
) -> None:
    blend = make_scene(tmp_path / "scene" / "shot.blend", frames=(1, FRAMES), samples=4)
    client, out = farm.client(), tmp_path / "out"
    hashes, _ = client.upload_project({"shot.blend": blend})
    job = client.submit(
        {
            "name": "progressive preview",
            "type": "blender-render-progressive",
            "blend": "shot.blend",
            "files": hashes,
            "blender_version": "3.4",
            "settings": {  # no preview setting: on by default
                "frames": f"1-{FRAMES}",
                "samples": 4,
                "chunks": 2,
                "frames_per_task": FRAMES,  # one Blender start per chunk and per merge
                "output": str(out / "frame_####"),
            },
        }
    )
    done = farm.wait_for_job(job["id"], timeout=120)
    assert done["status"] == "completed", done["status_reason"]
    frames = [f"frame_{f:04d}.png" for f in range(1, FRAMES + 1)]
    assert sorted(os.listdir(out)) == frames  # the preview is not delivered
    tasks = client.job(job["id"])["tasks"]
    assert [t["kind"] for t in tasks] == ["render", "merge", "render", "merge", "preview"]
    last_merge = max(t["completed_at"] for t in tasks if t["kind"] == "merge")
    assert tasks[-1]["claimed_at"] >= last_merge  # made of the finished frames
    log = client.task_log(tasks[-1]["id"])
    assert "[agent] uploaded farm_preview.webm" in log, log[-2000:]

    answer = requests.get(
        f"{client.url}/api/v1/jobs/{job['id']}/preview",
        headers={"Authorization": f"Bearer {client.token}"},
        timeout=30,
    )
    assert answer.status_code == 200 and answer.headers["Content-Type"] == "video/webm"
    assert answer.content.startswith(WEBM_MAGIC)
    movie = tmp_path / "preview.webm"
    movie.write_bytes(answer.content)
    decoded = decode(movie, tmp_path / "decoded")
    print(f"preview: {len(answer.content)} bytes, {len(decoded)} frames")
    assert len(decoded) == FRAMES
    for path, name in zip(decoded, frames, strict=True):
        assert png_size(path) == (64, 48)
        a, b = rgb(path), rgb(out / name)
        difference = sum(abs(x - y) for x, y in zip(a, b, strict=True)) / len(a)
        print(f"preview {path.name} vs delivered {name}: {difference:.2f} levels")
        assert difference <= PREVIEW_TOLERANCE
    # Not an output of the job: only the frames are listed and delivered.
    assert [o["name"] for o in client.outputs(job["id"])] == frames
