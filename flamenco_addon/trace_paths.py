"""Runs inside a separate Blender for `submit` without --project: traces a .blend with
the add-on's tracer and prepares its copy as the add-on's Submit does.

    blender -b --factory-startup -noaudio --disable-autoexec --python trace_paths.py -- JOB.json
    python trace_paths.py JOB.json          (a Python with the bpy module)

JOB.json: {"blend": absolute path, "pack_dir": a folder for the copies,
"result": where to write the answer, "scene": the scene to render or null}.
The answer (JSON): {"error": why Blender cannot open the file}, or
{"missing": ['image "wood": /abs/tex/wood.png', ...]} and nothing prepared,
or {"missing": [], "blend": its project path, "files": {project path:
absolute file to upload}, "file_outputs": what the scene's compositor File
Output nodes write (fileoutput_nodes.py), "file_format": the scene's output
format as the farm names it (e.g. "PNG", "FFMPEG"; null without a scene)},
where the .blend files are the rewritten copies in pack_dir. The rules are the
add-on's: deps.py traces, packing.plan_pack lays out, rewrite_paths.py
rewrites; so the CLI sends what the add-on sends.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import bpy
from deps import dependencies  # type: ignore[import-not-found]
from fileoutput_nodes import file_output_nodes  # type: ignore[import-not-found]
from packing import plan_pack, rewrite_job, upload_files  # type: ignore[import-not-found]
from rewrite_paths import rewrite  # type: ignore[import-not-found]

# Blender 5.0 lists multilayer EXR and video under image_settings.media_type; the
# farm speaks the file_format ids of 3.x-4.x (as submission.classic_file_format).
_MEDIA_TYPE_FORMATS = {"MULTI_LAYER_IMAGE": "OPEN_EXR_MULTILAYER", "VIDEO": "FFMPEG"}


def trace(blend: str, pack_dir: str, scene: str | None = None) -> dict[str, object]:
    try:
        bpy.ops.wm.open_mainfile(filepath=blend, load_ui=False, use_scripts=False)
    except RuntimeError as ex:  # not a .blend, or one from a newer Blender
        return {"error": str(ex).strip()}
    plan = plan_pack(blend, dependencies(bpy.data))
    if plan.missing:
        return {"missing": [m.describe() for m in plan.missing]}
    job = rewrite_job(plan, Path(pack_dir), main_source=blend)
    for entry in job.blends:
        Path(entry["save"]).parent.mkdir(parents=True, exist_ok=True)
        rewrite(entry, job.remap, {})
    files = {rel: str(path) for rel, path in upload_files(plan, Path(pack_dir)).items()}
    rendered = bpy.data.scenes.get(scene) if scene else bpy.context.scene
    nodes = file_output_nodes(rendered) if rendered is not None else []
    return {
        "missing": [],
        "blend": plan.blend_relpath,
        "files": files,
        "file_outputs": nodes,
        "file_format": output_format(rendered),
    }


def output_format(scene: object | None) -> str | None:
    """What the scene writes: an image format, or a movie one (FFMPEG, AVI_JPEG...)."""
    if scene is None:
        return None
    image = scene.render.image_settings  # type: ignore[attr-defined]
    media = getattr(image, "media_type", "")  # Blender 5.0+
    return str(_MEDIA_TYPE_FORMATS.get(media, image.file_format))


def main(job_path: str) -> None:
    with open(job_path, encoding="utf-8") as f:
        job = json.load(f)
    answer = trace(job["blend"], job["pack_dir"], job.get("scene"))
    with open(job["result"], "w", encoding="utf-8") as f:
        json.dump(answer, f)
    print("TRACE_DONE", flush=True)


if __name__ == "__main__":
    main(sys.argv[sys.argv.index("--") + 1] if "--" in sys.argv else sys.argv[-1])
