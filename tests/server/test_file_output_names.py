"""File Output files' farm names against a job's other names: a movie job's
chunks (file extensions forced on) deliver them where the job's own
use_file_extension says, and an output whose name starts like a farm name
("fileout1-", "unlisted1-") is refused at submission."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.core.fileoutputs import FileOutput, local_destination, setting_text
from coordinator.server.job_types import SettingsError, get
from coordinator.server.job_types.fileoutputs import delivery_target
from coordinator.server.job_types.outputs import expected_outputs


def test_a_movie_job_without_extensions_delivers_its_file_output_files(tmp_path: Path) -> None:
    passes = setting_text([FileOutput("passes", 0, "PNG", f"{tmp_path}/passes/image_")])
    job = get("blender-render").validate(
        {
            "frames": "1-2",
            "chunk_size": 2,
            "output": f"{tmp_path}/movie/shot_",
            "file_format": "FFMPEG",
            "use_file_extension": False,
            "file_outputs": passes,
        }
    )
    render = get("blender-render").compile(job)[0]
    assert render.kind == "render"
    names = sorted(
        n for n in expected_outputs("render", json.dumps(render.payload)).names if "fileout" in n
    )
    assert names == ["fileout1-0001.png", "fileout1-0002.png"]  # what the worker uploads
    # each lands where the artist's Blender (no extensions) writes it
    for frame, name in enumerate(names, start=1):
        want = tmp_path / "passes" / f"image_{frame:04d}"
        assert delivery_target(job, name, frame) == want
        assert local_destination(passes, name, frame, use_file_extension=False) == want
    # still exactly the stream's names for that frame, nothing else
    assert str(delivery_target(job, "fileout1-0001.exr", 1)).startswith("not delivered")
    assert str(delivery_target(job, "fileout1-0001.png", 2)).startswith("not delivered")


@pytest.mark.parametrize("name", ["fileout1-####", "fileout12-f_####", "unlisted3-####"])
def test_an_output_named_like_a_file_output_farm_name_is_refused(name: str) -> None:
    with pytest.raises(SettingsError, match="farm's names for compositor File Output") as caught:
        get("blender-render").validate({"frames": "1", "output": f"/tmp/r/{name}"})
    assert caught.value.field == "output"
    assert "frame_####" in str(caught.value)


@pytest.mark.parametrize("name", ["fileout_####", "fileoutA-####", "unlisted-####", "f_####"])
def test_other_output_names_are_taken(name: str) -> None:
    job = get("blender-render").validate({"frames": "1", "output": f"/tmp/r/{name}"})
    assert job["output"] == f"/tmp/r/{name}"
