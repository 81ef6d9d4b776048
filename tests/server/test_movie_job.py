"""A blender-render job whose output is a movie: chunks of lossless frames, then one encode."""

from __future__ import annotations

import json
from typing import Any

import pytest

from coordinator.core.fileoutputs import FileOutput, setting_text
from coordinator.core.protocol import TaskSpec
from coordinator.server.job_types import REGISTRY, SettingsError
from coordinator.server.job_types.outputs import expected_outputs

RENDER = REGISTRY["blender-render"]
PROGRESSIVE = REGISTRY["blender-render-progressive"]


def compile_movie(**changes: Any) -> list[TaskSpec]:
    settings = {
        "frames": "1-6",
        "output": "/renders/shot/frame_",
        "file_format": "FFMPEG",
        "chunk_size": 4,
        **changes,
    }
    return RENDER.compile(RENDER.validate(settings))


def test_frames_render_in_chunks_to_intermediate_pngs_then_one_encode() -> None:
    *chunks, encode = compile_movie()
    assert [c.frames for c in chunks] == [(1, 2, 3, 4), (5, 6)]
    first = chunks[0].payload
    assert first["file_format"] == "PNG" and first["color_depth"] == "16"
    assert first["output_name"] == "farm_movie_frame_####"
    assert first["intermediate_outputs"] == [f"farm_movie_frame_000{f}.png" for f in (1, 2, 3, 4)]
    assert encode.kind == "encode"
    assert encode.depends_on == (0, 1)
    assert encode.frames == ()  # a regenerate never keeps it: the movie is made again
    assert encode.payload["frame_start"] == 1 and encode.payload["frame_end"] == 6
    assert encode.payload["inputs"] == [f"farm_movie_frame_000{f}.png" for f in range(1, 7)]
    assert encode.payload["output_name"] == "frame_"
    assert encode.payload["file_format"] == "FFMPEG"


@pytest.mark.parametrize("fmt", ["FFMPEG", "AVI_JPEG", "AVI_RAW"])
def test_every_movie_format_is_accepted(fmt: str) -> None:
    assert compile_movie(file_format=fmt)[-1].payload["file_format"] == fmt


def test_chunks_name_no_movie_setting_so_a_regenerate_keeps_them() -> None:
    """Codec and quality live in the .blend; the chunks' payload is the same either way."""
    a = compile_movie()[0].payload
    b = compile_movie(file_format="AVI_JPEG", output="/elsewhere/take2_")[0].payload
    assert a == b


@pytest.mark.parametrize(
    ("frames", "words"),
    [("1-3,5-6", "consecutive"), ("1-10x2", "consecutive"), ("3,2,1", "consecutive")],
)
def test_a_movie_needs_one_range(frames: str, words: str) -> None:
    with pytest.raises(SettingsError) as info:
        compile_movie(frames=frames)
    assert info.value.field == "frames"
    assert words in str(info.value)


def test_a_movie_starts_at_frame_zero_or_later() -> None:
    with pytest.raises(SettingsError, match="frame 0 or later"):
        compile_movie(frames="-2-4")


def test_progressive_rendering_refuses_a_movie_saying_what_to_do() -> None:
    settings = PROGRESSIVE.validate(
        {"frames": "1", "samples": 8, "output": "/r/f_", "file_format": "FFMPEG"}
    )
    with pytest.raises(SettingsError) as info:
        PROGRESSIVE.compile(settings)
    assert info.value.field == "file_format" and "blender-render" in str(info.value)


def test_the_encode_may_upload_the_movie_in_any_container_and_nothing_else() -> None:
    *chunks, encode = compile_movie()
    out = expected_outputs(encode.kind, json.dumps(encode.payload))
    assert out.allows("frame_0001-0006.mp4") and out.allows("frame_0001-0006.mov")
    assert not out.allows("farm_movie_frame_0001.png")
    assert not out.allows("frame_0001-0007.mp4")
    assert out.first_missing({"frame_0001-0006.mkv"}) is None
    assert out.first_missing(set()) is not None
    chunk = expected_outputs(chunks[1].kind, json.dumps(chunks[1].payload))
    assert chunk.names == {"farm_movie_frame_0005.png", "farm_movie_frame_0006.png"}


def test_a_movie_name_ending_in_its_extension_is_kept() -> None:
    encode = compile_movie(output="/renders/shot/final.mp4")[-1]
    out = expected_outputs(encode.kind, json.dumps(encode.payload))
    assert out.allows("final.mp4") and out.allows("final.mp40001-0006.mov")


def test_a_movie_chunk_may_upload_its_file_output_files_too() -> None:
    """File Output nodes write per frame in a movie job too; their files come home."""
    passes = setting_text([FileOutput("passes", 0, "PNG", "/shot/passes/image_")])
    chunk = compile_movie(file_outputs=passes)[0]
    out = expected_outputs(chunk.kind, json.dumps(chunk.payload))
    assert out.allows("farm_movie_frame_0001.png")
    assert len(out.files) == 8  # 4 frames and 4 File Output files
