"""Compositor File Output nodes on a worker: into the task's folder, or muted.

A File Output node writes wherever the .blend says (an absolute path, "../"
out of the task's folder, a shared drive): from a file someone else made,
anywhere this user may write. So, with or without --allow-scripts, nothing
of theirs is written where the file points: each node the job lists
(`file_outputs`: node name and slot, as the submitter read them) is rewritten
to write into the task's folder under the farm's names ("fileout1-0001.png",
coordinator/core/fileoutputs.py), which travel home as outputs; every other
File Output node is muted, and the task log says so.

Imports ``bpy`` only when called (render_task.py and the agent import the
pure parts).
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Iterator
from typing import Any

from worker_agent.in_blender.render_task import TaskError

# (node name, slot index or None for a multilayer EXR node), in the job's order.
FileOutputs = tuple[tuple[str, int | None], ...]


def _bpy() -> Any:
    return importlib.import_module("bpy")


def check_field(value: Any) -> FileOutputs:
    """TASK.json's `file_outputs`: a list of {"node": name, "slot": index or null}."""
    if not isinstance(value, list):
        raise TaskError("task field 'file_outputs' must be a list")
    found = []
    for item in value:
        node = item.get("node") if isinstance(item, dict) else None
        slot = item.get("slot") if isinstance(item, dict) else None
        slot_ok = slot is None or (isinstance(slot, int) and not isinstance(slot, bool))
        if not isinstance(node, str) or not node or not slot_ok or (slot or 0) < 0:
            raise TaskError(f"task field 'file_outputs' has a bad entry: {item!r}")
        found.append((node, slot))
    return tuple(found)


def to_json(outputs: FileOutputs) -> list[dict[str, Any]]:
    return [{"node": node, "slot": slot} for node, slot in outputs]


def farm_pattern(index: int) -> str:
    """The file name pattern of stream `index` (core.fileoutputs.farm_pattern's rule)."""
    return f"fileout{index + 1}-####"


def route(scene: Any, outputs: FileOutputs, output_dir: str) -> list[str]:
    """Rewrite the listed nodes of `scene` into `output_dir`, mute every other File
    Output node of the file; returns the names of those muted. TaskError when a
    listed node or slot is not in the file, or a node cannot be changed."""
    bpy = _bpy()
    wanted: dict[str, dict[int | None, int]] = {}
    for index, (node, slot) in enumerate(outputs):
        wanted.setdefault(node, {})[slot] = index
    tree = _compositor(scene)
    routed: set[str] = set()
    muted = []
    for other in _trees(bpy):
        for node in other.nodes:
            if node.type != "OUTPUT_FILE" or node.mute:
                continue
            if other == tree and node.name in wanted:
                _change(node, other, lambda n=node: _rewrite(n, wanted[n.name], output_dir))
                routed.add(node.name)
            else:
                _change(node, other, lambda n=node: setattr(n, "mute", True))
                muted.append(node.name)
    lost = [name for name in wanted if name not in routed]
    if lost:
        raise TaskError(
            f"the job lists the compositor's File Output node {lost[0]!r}, which scene"
            f" {scene.name!r} of this .blend does not have (or has muted); submit again"
        )
    return muted


def saved_files(outputs: FileOutputs, output_dir: str, frame: int) -> Iterator[str]:
    """The File Output files of `frame` in `output_dir`: one per listed stream;
    TaskError naming the first one Blender did not write."""
    number = f"-{abs(frame):04d}" if frame < 0 else f"{frame:04d}"
    try:
        names = os.listdir(output_dir)
    except OSError as ex:
        raise TaskError(f"cannot read the task folder {output_dir}: {ex}") from ex
    for index, (node, slot) in enumerate(outputs):
        stem = farm_pattern(index).replace("####", number)
        found = [
            n
            for n in names
            if n == stem or (n.startswith(stem + ".") and "." not in n[len(stem) + 1 :])
        ]
        if not found:
            what = f"input {slot + 1}" if slot is not None else "its file"
            raise TaskError(
                f"frame {frame}: the File Output node {node!r} did not write {what}"
                " (is its input linked, and the compositor on?)"
            )
        yield os.path.join(output_dir, found[0])


def _compositor(scene: Any) -> Any:
    if hasattr(scene, "compositing_node_group"):  # 5.0+
        return scene.compositing_node_group
    return scene.node_tree if scene.use_nodes else None


def _trees(bpy: Any) -> list[Any]:
    trees = [g for g in bpy.data.node_groups if g.bl_idname == "CompositorNodeTree"]
    trees += [s.node_tree for s in bpy.data.scenes if getattr(s, "node_tree", None)]  # < 5.0
    return trees


def _change(node: Any, tree: Any, change: Any) -> None:
    try:  # linked from a library: editable in memory in 5.0, say so if not
        change()
    except (AttributeError, RuntimeError, TypeError) as ex:
        raise TaskError(
            f"cannot change the File Output node {node.name!r} of {tree.name!r} ({ex});"
            " make it local in the .blend"
        ) from ex


def _rewrite(node: Any, slots: dict[int | None, int], output_dir: str) -> None:
    """Every path of `node` inside `output_dir`: listed slots under the farm's names,
    the others under names nobody uploads. TaskError when the node's format in the
    .blend (multilayer EXR or not) is not what the job lists: then Blender would
    join the slots' own paths, which nothing checked, to the node's folder."""
    multilayer = _is_multilayer(node)
    if multilayer != (None in slots) or (multilayer and len(slots) != 1):
        listed = "one multilayer EXR file" if None in slots else "one file per input"
        really = "one multilayer EXR file" if multilayer else "one file per input"
        raise TaskError(
            f"the job lists the File Output node {node.name!r} as writing {listed}, but"
            f" in this .blend it writes {really}; submit the job again from the .blend"
        )
    folder = _literal(os.path.join(output_dir, ""))
    modern = hasattr(node, "file_output_items")  # 5.0: directory, file_name, items
    items = node.file_output_items if modern else node.file_slots
    if multilayer:  # one file, the slots are its layers
        name = farm_pattern(slots[None])
        if modern:  # 5.0: items name layers only, never a path
            node.directory, node.file_name = folder, name
            return
        node.base_path = folder + name
        for index, slot in enumerate(items):  # < 5.0: paths unused, layer names apart
            slot.path = f"unlisted{index + 1}-####"
        return
    if modern:
        node.directory, node.file_name = folder, ""
    else:
        node.base_path = folder
    for index, slot in enumerate(items):
        name = farm_pattern(slots[index]) if index in slots else f"unlisted{index + 1}-####"
        if modern:
            slot.name = name
        else:
            slot.path = name


def _is_multilayer(node: Any) -> bool:
    """Whether the node writes one multilayer EXR (the add-on's reader's rule)."""
    settings = node.format
    if getattr(settings, "media_type", "") == "MULTI_LAYER_IMAGE":  # 5.0
        return True
    return str(settings.file_format) == "OPEN_EXR_MULTILAYER"


def _literal(path: str) -> str:
    """A path Blender 4.5+ does not read as a template ("{...}")."""
    if _bpy().app.version >= (4, 5, 0):
        return path.replace("{", "{{").replace("}", "}}")
    return path
