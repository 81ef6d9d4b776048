"""The files a task is expected to produce, from its kind and payload alone.

A worker's secret lets it act on the task it holds, nothing more: it may
upload only the names that task renders (its frames named as Blender names
them, or the intermediate files its kind declares), and may complete it only
once each of them has arrived. The names come from the payload the job type
compiled, so they cost a few string operations per frame, not a look at the
job's other tasks or outputs.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass
from typing import Any

from coordinator.core.movies import movie_names
from coordinator.core.outputs import frame_path
from coordinator.server.job_types.fileoutputs import task_files

# Blender's still-image formats (scene.render.image_settings.file_format), for
# a task that keeps the scene's format: its frames may have any of their
# extensions. JPEG2000 comes once per codec (the codec picks the extension).
_FORMATS = (
    *("PNG", "JPEG", "OPEN_EXR", "TIFF", "BMP", "TARGA", "CINEON", "DPX", "HDR", "WEBP"),
    "IRIS",
)
_JPEG2000_CODECS = ("JP2", "J2K")

# How many names a refusal lists before "..." (a chunk may hold thousands).
_SHOWN = 4


@dataclass(frozen=True)
class ExpectedOutputs:
    """What one task produces: per file, the names it may have (one, unless the
    format is the scene's own, which only the worker's Blender knows)."""

    files: tuple[tuple[str, ...], ...]  # in the order the task writes them
    # Names it may upload but may complete without (a preview it could not make).
    optional: frozenset[str] = frozenset()

    @functools.cached_property
    def names(self) -> frozenset[str]:
        """Every name the task may upload."""
        return frozenset(name for choices in self.files for name in choices) | self.optional

    def allows(self, name: str) -> bool:
        return name in self.names

    def first_missing(self, present: Collection[str]) -> str | None:
        """The first file none of whose names is in `present`, described; None if all are."""
        for choices in self.files:
            if not any(name in present for name in choices):
                return _describe(choices)
        return None

    def describe(self) -> str:
        """The names for a person, shortened: "a_0001.png, a_0002.png, ... (40 files)"."""
        if not self.files:
            return "none (this task produces no files)"
        shown = ", ".join(_describe(choices) for choices in self.files[:_SHOWN])
        more = len(self.files) - _SHOWN
        return shown + (f", ... ({len(self.files)} files)" if more > 0 else "")


NONE = ExpectedOutputs(())


def _describe(choices: tuple[str, ...]) -> str:
    if len(choices) == 1:
        return choices[0]
    return f"{choices[0]} (or the same name with the scene's image extension)"


def _frame_names(payload: dict[str, Any], frame: int) -> tuple[str, ...]:
    """The names Blender gives `frame` of the payload's output name: one for a
    known format, one per format when the payload keeps the scene's."""
    pattern = str(payload.get("output_name") or "")
    use_ext = bool(payload.get("use_file_extension", True))
    fmt = payload.get("file_format")
    if not use_ext:
        return (frame_path(pattern, frame, file_format="PNG", use_file_extension=False),)
    if fmt == "JPEG2000":
        formats = [("JPEG2000", codec) for codec in _JPEG2000_CODECS]
    elif fmt:
        formats = [(str(fmt), "JP2")]
    else:
        formats = [(f, "JP2") for f in _FORMATS]
        formats += [("JPEG2000", codec) for codec in _JPEG2000_CODECS]
    names: dict[str, None] = {}  # unique, in order
    for f, codec in formats:
        try:
            names[frame_path(pattern, frame, file_format=f, jpeg2k_codec=codec)] = None
        except ValueError:  # a format Blender does not write frames in: no name
            continue
    return tuple(names)


def _render(payload: dict[str, Any]) -> Iterable[tuple[str, ...]]:
    """A render task: each of its frames (a progressive chunk: its declared EXRs)."""
    declared = payload.get("intermediate_outputs")
    frames = [int(frame) for frame in payload.get("frames") or ()]
    if declared:  # a movie's frames (with its File Output files) or a progressive chunk
        return [(str(name),) for name in declared] + task_files(payload, frames)
    # then the files of its compositor File Output nodes (fileoutputs.py), frame by frame
    return [_frame_names(payload, frame) for frame in frames] + task_files(payload, frames)


def _merge(payload: dict[str, Any]) -> Iterable[tuple[str, ...]]:
    """A progressive merge: per frame, its merged EXR (from the second chunk on) and
    the finished frame."""
    files: list[tuple[str, ...]] = []
    for merge in payload.get("merges") or ():
        if merge.get("merged_output"):
            files.append((str(merge["merged_output"]),))
        files.append(_frame_names(payload, int(merge["frame"])))
    return files


def _encode(payload: dict[str, Any]) -> Iterable[tuple[str, ...]]:
    """A movie's encode: the one movie, in whichever container the scene uses."""
    return [
        movie_names(
            str(payload.get("output_name") or ""),
            int(payload.get("frame_start", 0)),
            int(payload.get("frame_end", 0)),
            file_format=str(payload.get("file_format") or "FFMPEG"),
            use_file_extension=bool(payload.get("use_file_extension", True)),
        )
    ]


def _preview(payload: dict[str, Any]) -> frozenset[str]:
    """An image-sequence job's preview movie (preview.py), if the worker could make it."""
    name = payload.get("preview_name")
    return frozenset({name}) if isinstance(name, str) and name else frozenset()


# Task kind -> its files; a kind not listed (sleep) produces none.
_KINDS: dict[str, Callable[[dict[str, Any]], Iterable[tuple[str, ...]]]] = {
    "render": _render,
    "merge": _merge,
    "encode": _encode,
}


@functools.lru_cache(maxsize=512)
def expected_outputs(kind: str, payload: str | None) -> ExpectedOutputs:
    """The files of a task of `kind` whose payload is this JSON text (as stored).

    Cached by the text: a task's uploads and its completion ask again, and a
    chunk that keeps the scene's format has a dozen names per frame.
    """
    produce = _KINDS.get(kind)
    if produce is None and kind != "preview":
        return NONE
    data = json.loads(payload) if payload else {}
    data = data if isinstance(data, dict) else {}
    if produce is None:  # nothing it must produce, one file it may
        return ExpectedOutputs((), optional=_preview(data))
    return ExpectedOutputs(tuple(produce(data)))
