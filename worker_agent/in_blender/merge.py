"""The merge runner: adds a sample chunk to frames and writes them finished, inside Blender.

Runs like the render runner, in the Blender binary or a Python with ``bpy``::

    blender -b --factory-startup -Y FILE.blend --python-exit-code 1 --python merge.py -- MERGE.json
    python merge.py --bpy MERGE.json

It uses only the standard library, ``bpy`` and the modules next to it (the
render runner's scene setup and frame loop), and prints the same ``@@FARM@@``
event lines: ``frame_saved`` for each file it writes (the merged EXR, then the
frame), ``error``, ``done``.

What a merge does, for each frame of its task:

1. Checks each input EXR's ``cycles.<ViewLayer>.samples`` header against the
   samples the coordinator says it holds. Blender 4.4+ records the scene's total
   there even for a sample subset, and Cycles' merge weights each input by that
   header, so such a header is rewritten to the subset's length (zero-padded to
   the same width: Cycles reads it with ``sscanf("%d")``, and the file's layout
   stays as it is). Any other value means the input was rendered with other
   settings, and the merge refuses it.
2. ``bpy.ops.cycles.merge_images`` sums the two inputs weighted by samples. It
   returns FINISHED even when it fails, so the merged file's header is checked.
3. Writes the frame in the scene's format by running only the compositor: an
   Image node with the merged EXR takes the place of each Render Layers node,
   so nothing is path traced, and colour management, dithering, the scene's
   compositing and (where this Blender has OpenImageDenoise) denoising apply as
   in a local render. Verified: on 3.4.1 and 5.0.1 a merged frame written this
   way is byte-identical to a local render with the total samples.
"""

from __future__ import annotations

import dataclasses
import importlib
import io
import json
import os
import struct
import sys
import traceback
import types
from collections.abc import Sequence
from typing import Any

if not __package__:  # run by path inside Blender, where worker_agent may not be importable:
    # this folder becomes worker_agent.in_blender, so the imports below find the files next to us.
    _here = types.ModuleType("worker_agent.in_blender")
    _here.__path__ = [os.path.dirname(os.path.abspath(__file__))]
    sys.modules.setdefault(_here.__name__, _here)

from worker_agent.in_blender.emit import Emitter
from worker_agent.in_blender.render_task import RenderTask, TaskError, parse_args
from worker_agent.in_blender.runner import Run, check_loaded, open_blend
from worker_agent.in_blender.scene import setup_scene

EXR_MAGIC = b"\x76\x2f\x31\x01"
_MULTIPART = 0x1000  # EXR version flag: several parts (Blender writes one)
_HEADER_READ = 1 << 20  # bytes read at first; a header with thousands of channels may need more


class MergeError(Exception):
    """The merge cannot be done as asked; the message is for the artist."""


@dataclasses.dataclass(frozen=True)
class MergeInput:
    path: str  # absolute path of a multilayer EXR on this worker
    samples: int  # how many samples it holds (a chunk's length, or a merge's sum)


@dataclasses.dataclass(frozen=True)
class FrameMerge:
    """One frame of a merge task."""

    frame: int  # the frame being refined
    inputs: tuple[MergeInput, ...]  # one (the first chunk) or two (merged so far + a chunk)
    merged_output: str | None = None  # file name of the merged EXR; None with one input


@dataclasses.dataclass(frozen=True)
class MergeTask:
    """MERGE.json, written by the agent from a merge task's payload."""

    blend: str  # absolute path of the .blend (for the scene's output settings)
    output_dir: str  # where the merged EXRs and the frames are written
    merges: tuple[FrameMerge, ...]  # the frames, in order
    samples: int  # the frames' total samples: what a 4.4+ chunk header says
    output_name: str = ""  # the artist's file name pattern ("frame_####")
    file_format: str | None = None  # the finished frames' format; None = the scene's
    use_file_extension: bool | None = None  # None = keep the scene's
    scene: str | None = None  # scene name; None = the file's active scene
    camera: str | None = None  # camera object; None = the scene's
    allow_scripts: bool = False  # mode --bpy: auto-run scripts in the .blend

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> MergeTask:
        if not isinstance(data, dict):
            raise MergeError("merge task must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise MergeError(f"unknown merge task field(s): {', '.join(unknown)}")
        try:
            merges = tuple(_frame_merge(m) for m in data["merges"])
            task = cls(**{**data, "merges": merges})
        except (KeyError, TypeError, ValueError) as ex:
            raise MergeError(f"bad merge task: {ex!r}") from ex
        if not task.merges:
            raise MergeError("a merge task needs at least one frame")
        if task.output_name and not _plain_name(task.output_name):
            raise MergeError(f"output_name {task.output_name!r} is not a plain file name")
        for merge in task.merges:
            if not 1 <= len(merge.inputs) <= 2:
                raise MergeError(f"a merge takes one or two inputs, not {len(merge.inputs)}")
            if (len(merge.inputs) == 2) != bool(merge.merged_output):
                raise MergeError("merged_output names the result of merging two inputs")
            if merge.merged_output and not _plain_name(merge.merged_output):
                raise MergeError(f"merged_output {merge.merged_output!r} is not a plain file name")
            if any(i.samples < 1 or i.samples > task.samples for i in merge.inputs):
                raise MergeError("each input holds between 1 and the total samples")
        return task

    def render_task(self, frame: int | None = None) -> RenderTask:
        """The runner's RenderTask for the finished frames (output settings, naming)."""
        return RenderTask(
            blend=self.blend,
            frames=(frame,) if frame is not None else tuple(m.frame for m in self.merges),
            output_dir=self.output_dir,
            output_name=self.output_name,
            scene=self.scene,
            camera=self.camera,
            file_format=self.file_format,
            use_file_extension=self.use_file_extension,
            allow_scripts=self.allow_scripts,
        )


def _plain_name(name: str) -> bool:
    """One path component on every OS (the agent checked it fully with
    coordinator.core.names before starting Blender; this copy guards the file
    the merge writes, as Blender may not import the coordinator's package)."""
    return (
        isinstance(name, str)
        and name not in ("", ".", "..")
        and not name.startswith(".")
        and not any(c in name for c in "/\\:\x00")
    )


def _frame_merge(data: dict[str, Any]) -> FrameMerge:
    inputs = tuple(MergeInput(str(i["path"]), int(i["samples"])) for i in data["inputs"])
    return FrameMerge(int(data["frame"]), inputs, data.get("merged_output"))


# ---------------------------------------------------------------- EXR headers (pure)


@dataclasses.dataclass(frozen=True)
class SampleHeader:
    layer: str  # the view layer, from "cycles.<layer>.samples"
    value: int  # what it says
    offset: int  # where the value's text starts in the file
    width: int  # how many bytes of text it has


def read_sample_headers(path: str) -> list[SampleHeader]:
    """The ``cycles.<layer>.samples`` attributes of an OpenEXR file's header."""
    with open(path, "rb") as f:
        data = f.read(_HEADER_READ)
        while True:
            try:
                return _parse_sample_headers(data, path)
            except _Truncated:
                more = f.read(_HEADER_READ)
                if not more:
                    name = os.path.basename(path)
                    raise MergeError(f"{name}: the EXR header is cut off") from None
                data += more


class _Truncated(Exception):
    pass


def _parse_sample_headers(data: bytes, path: str) -> list[SampleHeader]:
    name = os.path.basename(path)
    if data[:4] != EXR_MAGIC:
        raise MergeError(f"{name} is not an OpenEXR file")
    (version,) = struct.unpack("<I", data[4:8])
    if version & _MULTIPART:
        raise MergeError(f"{name} is a multi-part EXR; Cycles merges single-part multilayer EXRs")
    found: list[SampleHeader] = []
    pos = 8
    while True:
        if pos >= len(data):
            raise _Truncated
        if data[pos] == 0:  # the header ends with an empty attribute name
            return found
        attr, pos = _cstring(data, pos)
        kind, pos = _cstring(data, pos)
        if pos + 4 > len(data):
            raise _Truncated
        (size,) = struct.unpack("<i", data[pos : pos + 4])
        pos += 4
        if pos + size > len(data):
            raise _Truncated
        if kind == "string" and attr.startswith("cycles.") and attr.endswith(".samples"):
            text = data[pos : pos + size].decode("ascii", "replace")
            try:
                value = int(text)
            except ValueError:
                raise MergeError(f"{name}: {attr} is {text!r}, not a number") from None
            found.append(SampleHeader(attr[len("cycles.") : -len(".samples")], value, pos, size))
        pos += size


def _cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.find(b"\x00", pos)
    if end < 0:
        raise _Truncated
    return data[pos:end].decode("utf-8", "replace"), end + 1


def write_sample_header(path: str, header: SampleHeader, value: int) -> None:
    """Rewrite one samples attribute in place, zero-padded to its width."""
    text = str(value).zfill(header.width).encode("ascii")
    if len(text) != header.width:
        raise MergeError(f"cannot write {value} into a {header.width}-digit samples header")
    with open(path, "r+b") as f:
        f.seek(header.offset)
        f.write(text)


def fix_sample_headers(path: str, *, samples: int, total: int) -> list[str]:
    """Make the file's samples headers say `samples`; returns what was changed, for the log.

    A header equal to `total` comes from Blender 4.4+'s sample subset and is
    corrected; any other mismatch means the file holds other samples than the
    task says, and mixing it in would weight it wrongly.
    """
    name = os.path.basename(path)
    headers = read_sample_headers(path)
    if not headers:
        raise MergeError(f"{name} has no cycles.<layer>.samples header: not a Cycles render")
    changed = []
    for header in headers:
        if header.value == samples:
            continue
        if header.value != total:
            raise MergeError(
                f"{name} holds {header.value} samples of view layer {header.layer!r}, but this"
                f" merge expects {samples}: it was rendered with other settings"
            )
        write_sample_header(path, header, samples)
        changed.append(f"{name}: {header.layer} samples {header.value} -> {samples} (4.4+ subset)")
    return changed


# ---------------------------------------------------------------- inside Blender


def _bpy() -> Any:
    return importlib.import_module("bpy")


def merge_exrs(first: MergeInput, second: MergeInput, output: str) -> None:
    """Cycles' weighted merge; raises MergeError unless the result is really there."""
    if os.path.exists(output):
        os.remove(output)
    os.makedirs(os.path.dirname(output), exist_ok=True)
    try:
        _bpy().ops.cycles.merge_images(
            input_filepath1=first.path, input_filepath2=second.path, output_filepath=output
        )
    except RuntimeError as ex:  # the bpy module raises what the binary only prints
        print(f"merge: {ex}")
    # The binary's operator reports errors but still returns FINISHED.
    expected = first.samples + second.samples
    headers = read_sample_headers(output) if os.path.isfile(output) else []
    if not headers or any(h.value != expected for h in headers):
        said = ", ".join(f"{h.layer}: {h.value}" for h in headers) or "no file"
        raise MergeError(
            f"Cycles could not merge {os.path.basename(first.path)} and"
            f" {os.path.basename(second.path)} ({said}; expected {expected} samples);"
            " see Blender's message above"
        )


def _scene_tree(scene: Any) -> Any:
    """The compositor node tree a local render of the scene would run, or None."""
    if not scene.render.use_compositing:
        return None
    if hasattr(scene, "compositing_node_group"):  # 5.0+: a node group data-block
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def _plain_tree(scene: Any) -> tuple[Any, Any]:
    """A tree of our own that only outputs an image: (tree, the socket to feed)."""
    bpy = _bpy()
    if hasattr(scene, "compositing_node_group"):  # 5.0+
        tree = bpy.data.node_groups.new("farm merge", "CompositorNodeTree")
        tree.interface.new_socket("Image", in_out="OUTPUT", socket_type="NodeSocketColor")
        output = tree.nodes.new("NodeGroupOutput")
        scene.compositing_node_group = tree
    else:
        scene.use_nodes = True
        tree = scene.node_tree
        tree.nodes.clear()
        output = tree.nodes.new("CompositorNodeComposite")
    scene.render.use_compositing = True
    return tree, output.inputs[0]


def has_denoiser() -> bool:
    """Whether this Blender was built with OpenImageDenoise (Debian's 3.4 is not)."""
    try:
        return bool(importlib.import_module("_cycles").with_openimagedenoise)
    except (ImportError, AttributeError):
        return False


class Compositing:
    """The compositor graph that writes a finished frame from a merged EXR.

    Built once per Blender run, on the first frame; later frames only swap the
    image its Image nodes read.
    """

    def __init__(self, scene: Any, *, denoise: bool, log: Any) -> None:
        self.scene = scene
        self.denoise = denoise  # the scene denoises and this Blender can
        self.log = log  # print-like, for the task log
        self.denoising: str | None = None  # how the graph denoises, said again on reuse
        self.image: Any = None  # the merged EXR being shown
        self.sources: list[tuple[Any, str | None]] = []  # Image nodes and their view layer

    def show(self, image: Any) -> None:
        """Make the compositor read `image`: builds the graph the first time."""
        self.release()
        self.image = image
        if not self.sources:
            self._build()
            return
        for node, layer in self.sources:
            node.image = image
            self._pick_layer(node, layer)

    def release(self) -> None:
        """Drop the image shown last: a warm Blender merges many frames, and each
        merged EXR it kept would stay in memory until the process ends."""
        if self.image is not None:
            for node, _layer in self.sources:
                node.image = None
            _bpy().data.images.remove(self.image)
            self.image = None

    def _build(self) -> None:
        tree = _scene_tree(self.scene)
        if tree is None:
            tree, target = _plain_tree(self.scene)
            _node, combined = self._source(tree, None)
            tree.links.new(combined, target)
            return
        own = [
            n
            for n in tree.nodes
            if n.bl_idname == "CompositorNodeRLayers" and (n.scene is None or n.scene == self.scene)
        ]
        for render_layers in own:
            self._replace(tree, render_layers)

    def _source(self, tree: Any, layer: str | None) -> tuple[Any, Any]:
        """An Image node on the merged EXR: (node, its Combined output, denoised if asked)."""
        node = tree.nodes.new("CompositorNodeImage")
        node.image = self.image
        self._pick_layer(node, layer)
        self.sources.append((node, layer))
        combined = _output(node, "Combined", "Image")
        if combined is None:
            raise MergeError("the merged EXR has no Combined pass")
        if self.denoise:
            combined = self._denoised(tree, node, combined)
        return node, combined

    def _pick_layer(self, node: Any, layer: str | None) -> None:
        if layer is None:
            return
        try:
            node.layer = layer
        except TypeError:
            self.log(f"view layer {layer!r} is not in the merged frame; using the first")

    def _denoised(self, tree: Any, node: Any, combined: Any) -> Any:
        denoise = tree.nodes.new("CompositorNodeDenoise")
        tree.links.new(combined, denoise.inputs["Image"])
        guides = []
        for pass_name, socket in (("Denoising Albedo", "Albedo"), ("Denoising Normal", "Normal")):
            source = _output(node, pass_name)
            if source is not None and socket in denoise.inputs:
                tree.links.new(source, denoise.inputs[socket])
                guides.append(socket.lower())
        prefilter = getattr(self.scene.cycles, "denoising_prefilter", None)
        if prefilter is not None and hasattr(denoise, "prefilter"):
            denoise.prefilter = prefilter
        self.denoising = (
            f"denoising with OpenImageDenoise ({', '.join(guides) or 'no'} guiding passes)"
        )
        self.log(self.denoising)
        return denoise.outputs[0]

    def _replace(self, tree: Any, render_layers: Any) -> None:
        """Feed everything the Render Layers node fed from the merged EXR instead."""
        node, combined = self._source(tree, render_layers.layer)
        for link in list(tree.links):
            if link.from_node != render_layers:
                continue
            name = link.from_socket.name
            source = combined if name == "Image" else _output(node, name)
            if source is None:
                self.log(f"compositor input {name!r} is not in the merged frame; left unlinked")
                continue
            tree.links.new(source, link.to_socket)
        tree.nodes.remove(render_layers)


def _output(node: Any, *names: str) -> Any:
    for name in names:
        socket = node.outputs.get(name)
        if socket is not None:
            return socket
    return None


def prepare_scene(task: MergeTask) -> tuple[Any, Compositing]:
    """The scene set up for writing the finished frames, and its compositing."""
    scene = setup_scene(task.render_task())
    wants_denoise = scene.render.engine == "CYCLES" and bool(scene.cycles.use_denoising)
    can_denoise = wants_denoise and has_denoiser()
    if wants_denoise and not can_denoise:
        print("merge: this Blender has no OpenImageDenoise; frames are written without denoising")
    return scene, Compositing(scene, denoise=can_denoise, log=lambda t: print(f"merge: {t}"))


def merge_frame(
    task: MergeTask, merge: FrameMerge, scene: Any, compositing: Compositing, emitter: Emitter
) -> None:
    """Merge one frame's inputs and write it finished; emits frame_saved for each file."""
    source = merge.inputs[0].path
    if merge.merged_output:
        source = os.path.join(task.output_dir, merge.merged_output)
        merge_exrs(merge.inputs[0], merge.inputs[1], source)
        emitter.emit("frame_saved", frame=merge.frame, path=source)
    compositing.show(_bpy().data.images.load(source, check_existing=False))
    Run(task.render_task(merge.frame), emitter).render(scene)


def merge_loaded(
    task: MergeTask, emitter: Emitter, compositing: Compositing | None = None
) -> Compositing:
    """Merges a task in the file Blender has open; returns the compositing to reuse.

    A warm Blender passes back the compositing of its last merge of the same
    file and settings: its graph already reads merged EXRs instead of the
    Render Layers (which it removed), so it is reused, not built again.
    """
    for item in (i for m in task.merges for i in m.inputs):
        for change in fix_sample_headers(item.path, samples=item.samples, total=task.samples):
            print(f"merge: {change}")
    if compositing is None:
        scene, compositing = prepare_scene(task)
    else:
        scene = setup_scene(task.render_task())  # this task's output folder and naming
        if compositing.denoising:
            print(f"merge: {compositing.denoising} (the graph of the last merge)")
    for merge in task.merges:
        merge_frame(task, merge, scene, compositing, emitter)
    compositing.release()
    emitter.emit("done", frames=[m.frame for m in task.merges])
    return compositing


def run_merge(argv: Sequence[str], emitter: Emitter) -> int:
    """Checks, merges and finishes; every failure becomes one error event and exit code 1."""
    try:
        module_mode, path = parse_args(argv)
        task = load_merge_task(path)
        if module_mode:
            open_blend(task.render_task())
        else:
            check_loaded(task.render_task())
        merge_loaded(task, emitter)
        return 0
    except (MergeError, TaskError) as ex:
        emitter.emit("error", message=str(ex))
        return 1
    except Exception as ex:
        emitter.emit("error", message=f"merge failed: {ex!r}", traceback=traceback.format_exc())
        return 1


def load_merge_task(path: str) -> MergeTask:
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError) as ex:
        raise MergeError(f"cannot read merge task file {path}: {ex}") from ex
    return MergeTask.from_json(data)


def main(argv: Sequence[str]) -> int:
    if isinstance(sys.stdout, io.TextIOWrapper):
        sys.stdout.reconfigure(encoding="utf-8", errors="backslashreplace")
    return run_merge(argv, Emitter(sys.stdout))


if __name__ == "__main__":
    code = main(sys.argv)
    if code != 0 or "--" not in sys.argv:
        sys.exit(code)
