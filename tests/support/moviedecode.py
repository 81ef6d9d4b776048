"""Movies decoded by Blender's own decoder (Debian's 3.4), for the tests that
compare a farm's movie or preview video with frames: each movie to 8-bit RGB
PNGs numbered from 1, at the movie's size, and its sound to a WAV if asked."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.blendgen import DEBIAN_BLENDER

# Runs inside Blender: each [movie, out folder, wav or None] of the JSON at argv[-1].
DECODE_SCRIPT = """
import json, os, sys
import bpy
for movie, out, wav in json.loads(open(sys.argv[-1]).read()):
    bpy.ops.wm.read_factory_settings(use_empty=True)
    scene = bpy.context.scene
    strips = scene.sequence_editor_create().sequences
    strip = strips.new_movie("movie", movie, 1, 1)
    scene.frame_start, scene.frame_end = 1, strip.frame_final_duration
    render = scene.render
    render.resolution_x = strip.elements[0].orig_width
    render.resolution_y = strip.elements[0].orig_height
    render.resolution_percentage = 100
    render.dither_intensity = 0
    scene.view_settings.view_transform = "Standard"
    render.image_settings.file_format = "PNG"
    render.image_settings.color_mode = "RGB"
    render.filepath = os.path.join(out, "")
    bpy.ops.render.render(animation=True)
    if wav:
        strips.new_sound("sound", movie, 2, 1)
        bpy.ops.sound.mixdown(filepath=wav, container="WAV", codec="PCM", format="S16")
"""


def decode_movies(pairs: list[tuple[Path, Path, Path | None]], folder: Path) -> None:
    """Decode each (movie, PNG folder, WAV path or None); scripts go in `folder`."""
    script, args = folder / "decode.py", folder / "decode.json"
    script.write_text(DECODE_SCRIPT)
    args.write_text(json.dumps([[str(m), str(o), str(w) if w else None] for m, o, w in pairs]))
    command = [DEBIAN_BLENDER, "-b", "--factory-startup", "--python-exit-code", "1"]
    subprocess.run(
        [*command, "--python", str(script), "--", str(args)],
        check=True,
        timeout=300,
        capture_output=True,
    )
