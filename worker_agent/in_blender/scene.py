"""Applies a render task to the scene inside Blender: scene, camera, output, Cycles, region.

Shared by the render runner and the merge (which writes finished frames with the
same output settings). Imports ``bpy`` only when called.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from worker_agent.in_blender.fileoutputs import route as route_file_outputs
from worker_agent.in_blender.render_task import JobFault, RenderTask, TaskError

# Blender 4.4 replaced "samples = chunk length" by an explicit sample subset.
SAMPLE_SUBSET_VERSION = (4, 4, 0)


def _bpy() -> Any:
    """The bpy module, imported late so the pure parts above work without Blender."""
    return importlib.import_module("bpy")


def blender_version() -> tuple[int, int, int]:
    major, minor, patch = _bpy().app.version
    return int(major), int(minor), int(patch)


def setup_scene(task: RenderTask) -> Any:
    """Applies the task to the scene Blender will render and returns that scene."""
    scene = _pick_scene(task.scene)
    _pick_camera(scene, task.camera)
    _set_output(scene, task)
    if scene.render.engine == "CYCLES":
        _set_cycles(scene, task)
    elif task.samples is not None or task.sample_count is not None:
        raise TaskError(
            f"scene {scene.name!r} renders with {scene.render.engine}, and only Cycles can"
            " render a frame in sample chunks; render it in frame chunks (blender-render)"
        )
    _set_region(scene, task)
    if task.threads is not None:
        scene.render.threads_mode = "FIXED"
        scene.render.threads = task.threads
    if task.disable_compositor:
        scene.render.use_compositing = False
    if task.persistent_data is not None:
        scene.render.use_persistent_data = task.persistent_data
    # With or without --allow-scripts: nothing written outside the task's folder.
    for name in route_file_outputs(scene, task.file_outputs, task.output_dir):
        print(
            f"[runner] muted the compositor's File Output node {name!r}: it is not among"
            " the files the job brings home, and would write outside the task's folder"
            " (submit with the add-on, or the CLI with a Blender to trace the .blend)",
            flush=True,
        )
    return scene


def _pick_scene(name: str | None) -> Any:
    bpy = _bpy()
    if name is None:
        return bpy.context.scene
    scene = bpy.data.scenes.get(name)
    if scene is None:
        known = ", ".join(repr(s.name) for s in bpy.data.scenes)
        raise JobFault(f"scene {name!r} not found in the file (it has {known})")
    if bpy.context.window is not None:
        bpy.context.window.scene = scene
    return scene


def _pick_camera(scene: Any, name: str | None) -> None:
    if name is not None:
        camera = scene.objects.get(name)
        if camera is None or camera.type != "CAMERA":
            raise JobFault(f"camera {name!r} not found in scene {scene.name!r}")
        scene.camera = camera
    if scene.camera is None:
        raise JobFault(f"scene {scene.name!r} has no camera")


def _set_output(scene: Any, task: RenderTask) -> None:
    render = scene.render
    if task.file_format is not None:
        _set_file_format(render.image_settings, task.file_format)
    if task.color_depth is not None:  # a movie's lossless frames: 16-bit PNG (encode.py)
        try:
            render.image_settings.color_depth = task.color_depth
        except TypeError as ex:
            raise TaskError(f"cannot write {task.color_depth}-bit frames: {ex}") from ex
    if render.is_movie_format:
        fmt = render.image_settings.file_format
        raise TaskError(
            f"the scene writes a movie ({fmt}) and the job did not say so: submit it with"
            f" file_format {fmt} (CLI: --set file_format={fmt}; the add-on does it itself),"
            " and the farm renders the frames in chunks and encodes the movie"
        )
    if render.use_multiview and render.image_settings.views_format == "INDIVIDUAL":
        raise TaskError("stereo/multiview output as individual files is not supported")
    if task.use_file_extension is not None:
        render.use_file_extension = task.use_file_extension
    try:
        os.makedirs(task.output_dir, exist_ok=True)
    except OSError as ex:
        raise TaskError(f"cannot create the output folder: {ex}") from ex
    path = os.path.join(task.output_dir, task.output_name)
    if _bpy().app.version >= (4, 5, 0):  # "{...}" is a path template there: keep it literal
        path = path.replace("{", "{{").replace("}", "}}")
    render.filepath = path
    render.use_overwrite = True  # a retried task must replace a partial file
    render.use_placeholder = False


def _set_file_format(image_settings: Any, file_format: str) -> None:
    # 5.0 split the format list by media_type: multilayer EXR is its own media
    # type, and file_format only accepts the formats of the current one.
    if hasattr(image_settings, "media_type"):
        multilayer = file_format == "OPEN_EXR_MULTILAYER"
        image_settings.media_type = "MULTI_LAYER_IMAGE" if multilayer else "IMAGE"
    try:
        image_settings.file_format = file_format
    except TypeError as ex:
        raise TaskError(f"this Blender cannot write file format {file_format!r}: {ex}") from ex


def _single_part_exr(scene: Any) -> None:
    """A sample range is rendered to be merged, and Cycles' merge reads only the
    first part of an EXR: 5.0 writes each pass to a part of its own unless asked
    for the interleaved (single-part) layout that 2.8-4.x always write."""
    settings = scene.render.image_settings
    if settings.file_format == "OPEN_EXR_MULTILAYER" and hasattr(settings, "use_exr_interleave"):
        settings.use_exr_interleave = True


def _set_cycles(scene: Any, task: RenderTask) -> None:
    cycles = scene.cycles
    if task.disable_denoise:
        if task.keep_denoising_data and cycles.use_denoising:
            # Albedo and normal guide a later denoise of the merged frame.
            for layer in scene.view_layers:
                layer.cycles.denoising_store_passes = True
        cycles.use_denoising = False
    if task.seed is not None:
        cycles.seed = task.seed
    if task.samples is not None:
        cycles.samples = task.samples
    if task.sample_count is not None:
        _set_sample_range(cycles, task.sample_offset or 0, task.sample_count)
        _single_part_exr(scene)
    if task.device is not None:
        _set_device(scene, task.device)


def _set_sample_range(cycles: Any, offset: int, count: int) -> None:
    # Adaptive sampling stops each range at a different noise level: ranges
    # would no longer add up to one render.
    cycles.use_adaptive_sampling = False
    if blender_version() >= SAMPLE_SUBSET_VERSION:
        # 4.4+: samples stays the total; the subset picks the range.
        cycles.use_sample_subset = True
        cycles.sample_offset = offset
        cycles.sample_subset_length = count
    elif hasattr(cycles, "sample_offset"):
        # 3.1-4.3: render `samples` samples starting at sample_offset.
        cycles.sample_offset = offset
        cycles.samples = count
    else:
        version = ".".join(map(str, blender_version()))
        raise TaskError(
            f"rendering a frame in sample chunks needs Blender 3.1 or newer (sample_offset);"
            f" this worker has {version}"
        )


def _set_device(scene: Any, device: str) -> None:
    if device == "CPU":
        scene.cycles.device = "CPU"
        return
    prefs = _bpy().context.preferences.addons["cycles"].preferences
    try:
        prefs.compute_device_type = device
    except TypeError as ex:
        raise TaskError(f"this Blender's Cycles does not support {device}") from ex
    prefs.refresh_devices()
    found = [d for d in prefs.devices if d.type == device]
    if not found:
        seen = ", ".join(f"{d.name} ({d.type})" for d in prefs.devices) or "none"
        raise TaskError(f"no {device} device on this machine; Cycles sees: {seen}")
    for d in prefs.devices:
        d.use = d.type == device
    scene.cycles.device = "GPU"


def _set_region(scene: Any, task: RenderTask) -> None:
    if task.region is None:
        return
    render = scene.render
    render.use_border = True
    render.use_crop_to_border = task.crop_to_region
    x0, y0, x1, y1 = task.region
    render.border_min_x, render.border_min_y = x0, y0
    render.border_max_x, render.border_max_y = x1, y1


def ready_fields(scene: Any, task: RenderTask) -> dict[str, Any]:
    bpy = _bpy()
    cycles = scene.cycles if scene.render.engine == "CYCLES" else None
    return {
        "blender": ".".join(str(v) for v in bpy.app.version),
        "scene": scene.name,
        "engine": scene.render.engine,
        "camera": scene.camera.name,
        "frames": list(task.frames),
        "output": scene.render.filepath,
        "file_format": scene.render.image_settings.file_format,
        "samples": _total_samples(cycles, task),
        "sample_offset": task.sample_offset,
        "sample_count": task.sample_count,
        "device": cycles.device if cycles is not None else None,
    }


def _total_samples(cycles: Any, task: RenderTask) -> int | None:
    """Samples of the whole frame (a sample range renders part of them)."""
    if cycles is None:
        return None
    if task.sample_count is None or blender_version() >= SAMPLE_SUBSET_VERSION:
        return int(cycles.samples)
    return task.samples  # 3.1-4.3 hold the range length in cycles.samples
