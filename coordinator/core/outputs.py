"""The file names Blender gives rendered frames, so farm frames land where a local render would.

No `bpy` here: the coordinator names delivered frames without Blender. The rules
mirror Blender's C code (`BKE_image_path_from_imformat`: `BLI_path_abs`, then
`BLI_path_frame` with 4 digits, then `BKE_image_path_ext_from_imformat_ensure`)
and were checked against `scene.render.frame_path()` of Debian's Blender 3.4
and of `bpy` 5.0.1, which agree on every rule used here (tests/core/test_outputs.py).

The path templates of Blender 4.5+ ("{blend_name}", "{fps:###}") are expanded
by `expand_path_template()` on the submitting machine, which alone knows the
values; workers then get a plain pattern. Not modelled: `BLI_path_abs` on
Linux turning a Windows path "C:\\x" into "/c/x" (the farm keeps Windows paths
Windows-shaped, as the artist's own Blender would).
"""

from __future__ import annotations

import math
import ntpath
import os
import posixpath
import re
from collections.abc import Mapping
from types import ModuleType

# Digits Blender appends when the file name has no "#" (BLI_path_frame(..., 4)).
DEFAULT_DIGITS = 4

# Extensions per `image_settings.file_format`; the first is the one Blender
# appends, the others are accepted as already present (image_format.cc,
# image_path_ext_from_imformat_impl). JPEG2000 depends on the codec, below.
_EXTENSIONS: dict[str, tuple[str, ...]] = {
    "BMP": (".bmp",),
    "IRIS": (".rgb",),
    "PNG": (".png",),
    "JPEG": (".jpg", ".jpeg"),
    "TARGA": (".tga",),
    "TARGA_RAW": (".tga",),
    "CINEON": (".cin",),
    "DPX": (".dpx",),
    "OPEN_EXR": (".exr",),
    "OPEN_EXR_MULTILAYER": (".exr",),  # a media type, not a file_format, in 5.0
    "HDR": (".hdr",),
    "TIFF": (".tif", ".tiff"),
    "WEBP": (".webp",),
}
_JPEG2000_EXTENSIONS = {"JP2": (".jp2",), "J2K": (".j2c",)}  # image_settings.jpeg2k_codec

# One file per job, not per frame: such output cannot be split into chunks.
# AVI_JPEG and AVI_RAW exist up to Blender 4.1; 4.2+ only has FFMPEG.
_MOVIE_FORMATS = frozenset({"FFMPEG", "AVI_JPEG", "AVI_RAW"})

# Extensions Blender *replaces* rather than appends to, so "a.png" as EXR gives
# "a.exr", while "a.mp4" gives "a.mp4.exr" (imb_ext_image in imbuf/intern/util.cc).
_IMAGE_EXTENSIONS = (
    *(".png", ".tga", ".bmp", ".jpg", ".jpeg", ".sgi", ".rgb", ".rgba", ".tif", ".tiff"),
    *(".tx", ".jp2", ".j2c", ".hdr", ".dds", ".dpx", ".cin", ".exr", ".psd", ".pdd", ".psb"),
    ".webp",
)

# The last run of "#" in the file name: "a##b##c" numbers only the second run.
_LAST_HASHES = re.compile(r"#+(?=[^#]*\Z)")

# Blender reads both separators on every OS when it looks for the file name.
_SEPARATORS = ("/", "\\")

_WINDOWS_ABSOLUTE = re.compile(r"[A-Za-z]:[\\/]|\\\\")


def frame_path(
    pattern: str,
    frame: int,
    *,
    file_format: str,
    use_file_extension: bool = True,
    jpeg2k_codec: str = "JP2",
) -> str:
    """The exact path Blender writes frame `frame` of `render.filepath` = `pattern` to.

    `pattern` must already be absolute and normalised (resolve_blender_relative):
    Blender does that before naming, and only it knows the .blend's folder.
    """
    extensions = _extensions(file_format, jpeg2k_codec)
    if pattern.startswith("//"):
        raise ValueError(
            f"output path {pattern!r} is relative to the .blend file; "
            "resolve it with resolve_blender_relative() first"
        )
    path = _insert_frame(pattern, frame)
    return _ensure_extension(path, extensions) if use_file_extension else path


def output_folder(pattern: str) -> str:
    """The folder a job's output pattern writes its frames into, as text.

    Everything before the pattern's last separator, "/" or "\\" (Blender reads
    both), so "/shots/renders/" is that folder itself and "/shots/f_####" is
    "/shots". A root keeps its separator ("/", "C:\\"). Empty when the pattern
    names no folder. Every receiver (coordinator, CLI, add-on) uses this rule,
    so a pull lands where the coordinator delivers.
    """
    cut = max(pattern.rfind("/"), pattern.rfind("\\"))
    if cut < 0:
        return ""
    folder = pattern[:cut]
    if folder == "" or (len(folder) == 2 and folder[1] == ":"):
        return pattern[: cut + 1]  # "/" or "C:\\"
    return folder


def local_output_folder(pattern: str, *, windows: bool = os.name == "nt") -> str | None:
    """`output_folder` of a pattern as a folder of this machine, or None.

    None when the pattern belongs to another OS (a Windows artist's
    "C:\\shots\\f_####" seen on Linux: taken as a relative path, it would land
    under the working directory) or names no absolute folder. Blender on Linux
    and macOS reads "\\" as "/", and so does this.
    """
    if not windows:
        if ntpath.splitdrive(pattern)[0]:  # a drive letter or \\server\share
            return None
        pattern = pattern.replace("\\", "/")
    folder = output_folder(pattern)
    if windows:  # absolute means drive (or share) and root, as pathlib says
        absolute = bool(ntpath.splitdrive(folder)[0]) and ntpath.isabs(folder)
    else:
        absolute = posixpath.isabs(folder)
    return folder if absolute else None


def is_movie_format(file_format: str) -> bool:
    """Whether the output is one movie file, which cannot be rendered in chunks."""
    if file_format in _MOVIE_FORMATS:
        return True
    if file_format in _EXTENSIONS or file_format == "JPEG2000":
        return False
    raise ValueError(f"unknown Blender file format {file_format!r}")


def resolve_blender_relative(path: str, blend_dir: str) -> str:
    """An absolute, normalised output path, as Blender's BLI_path_abs makes it.

    "//" means the .blend's folder. A path relative to anything else would be
    relative to Blender's working directory, which the farm cannot know, so it
    is refused. A trailing separator survives: it means "this folder, default
    name" (frames named 0001.png ...).
    """
    flavour = _path_flavour(path, blend_dir)
    if flavour is posixpath:  # Blender on Linux and macOS reads "\" as "/"
        path, blend_dir = path.replace("\\", "/"), blend_dir.replace("\\", "/")
    if path.startswith("//"):
        if not flavour.isabs(blend_dir):
            raise ValueError(f"the .blend's folder {blend_dir!r} is not an absolute path")
        path = flavour.join(blend_dir, path[2:])
    elif not flavour.isabs(path):
        raise ValueError(
            f"output path {path!r} is relative to Blender's working directory; "
            "use '//' (the .blend's folder) or an absolute path"
        )
    return _normalise(path, flavour)


def _extensions(file_format: str, jpeg2k_codec: str) -> tuple[str, ...]:
    """The format's extensions, refusing the ones that name no single frame."""
    if file_format == "JPEG2000":
        if jpeg2k_codec not in _JPEG2000_EXTENSIONS:
            raise ValueError(f"unknown JPEG 2000 codec {jpeg2k_codec!r}; expected JP2 or J2K")
        return _JPEG2000_EXTENSIONS[jpeg2k_codec]
    if is_movie_format(file_format):
        raise ValueError(f"{file_format} writes one movie file, not one file per frame")
    return _EXTENSIONS[file_format]


def _insert_frame(pattern: str, frame: int) -> str:
    """BLI_path_frame: number the last "#" run of the file name, adding "####" if none.

    C's "%.*d" pads the digits, not the sign: frame -7 in "###" is "-007".
    """
    cut = max(pattern.rfind(sep) for sep in _SEPARATORS) + 1
    folder, name = pattern[:cut], pattern[cut:]
    if "#" not in name:
        name += "#" * DEFAULT_DIGITS
    run = _LAST_HASHES.search(name)
    assert run is not None  # there is at least one "#" by now
    digits = str(abs(frame)).zfill(len(run.group()))
    number = f"-{digits}" if frame < 0 else digits
    return folder + name[: run.start()] + number + name[run.end() :]


def _ensure_extension(path: str, extensions: tuple[str, ...]) -> str:
    """BKE_image_path_ext_from_imformat_ensure: keep, replace or append the extension.

    A name that already ends in one of the format's extensions is kept (any case);
    another image extension is replaced; anything else gets the extension added,
    after trailing dots are dropped ("a." -> "a.png", but "a.mp4" -> "a.mp4.png").
    """
    if any(_has_extension(path, ext) for ext in extensions):
        return path
    if any(_has_extension(path, ext) for ext in _IMAGE_EXTENSIONS):
        return path[: path.rfind(".")] + extensions[0]
    return path.rstrip(".") + extensions[0]


def _has_extension(path: str, ext: str) -> bool:
    """BLI_path_extension_check: ASCII case-insensitive, and never the whole path."""
    tail = path[-len(ext) :]
    return len(path) > len(ext) and tail.isascii() and tail.lower() == ext


def _path_flavour(path: str, blend_dir: str) -> ModuleType:
    """Windows rules for a Windows artist's paths, whatever OS the farm runs on."""
    if _WINDOWS_ABSOLUTE.match(path) or _WINDOWS_ABSOLUTE.match(blend_dir):
        return ntpath
    return posixpath


def _normalise(path: str, flavour: ModuleType) -> str:
    """normpath, keeping the meaning of a trailing separator (a folder, not a name)."""
    name = flavour.basename(path)
    is_folder = name in ("", ".", "..")
    path = flavour.normpath(path)
    if flavour is posixpath and path.startswith("//"):
        path = path[1:]  # POSIX keeps a leading "//", but Blender would read it as "//"-relative
    if is_folder and not path.endswith(flavour.sep):
        path += flavour.sep
    return path


# ------------------------------------------------------------ path templates


class TemplateError(ValueError):
    """A path template Blender 4.5+ would refuse to render; says which part and why."""


# Variables of the render output path, by the Blender version that added them.
TEMPLATE_VARIABLES_4_5 = ("blend_name", "fps", "resolution_x", "resolution_y")
TEMPLATE_VARIABLES_5_0 = (
    *TEMPLATE_VARIABLES_4_5,
    *("blend_dir", "blend_name_lib", "blend_dir_lib", "scene_name", "camera_name"),
)
# "###" (an integer, at least 3 digits), ".##" (exactly 2 decimals), "###.##".
_FORMAT_SPEC = re.compile(r"(?P<whole>#*)(?:\.(?P<decimals>#+))?")


_UNSAFE_IN_NAMES = re.compile(r'[/\\?*:|"<>\x00-\x1f\x7f]')


def safe_filename(text: str) -> str:
    """A name made safe to be one path component, as Blender makes the text values
    of templates ({scene_name}, {camera_name}): characters no file system takes
    become "_", and a name of dots only starts with "_" (never "." or "..")."""
    text = _UNSAFE_IN_NAMES.sub("_", text)
    return "_" + text[1:] if text and not text.strip(".") else text


def expand_path_template(path: str, variables: Mapping[str, str | int | float]) -> str:
    """`path` with every "{name}" / "{name:spec}" replaced, "{{" and "}}" unescaped.

    Mirrors Blender's path templates (4.5+), checked against
    `scene.render.frame_path()` of bpy 5.0.1 in tests/addon/test_bpy.py: floats
    print like Python's repr ("24.0"); "#" specs round half away from zero and
    pad with zeros; only numbers take a spec. Frame "#"s outside braces stay.
    """
    out: list[str] = []
    i = 0
    while i < len(path):
        char = path[i]
        if path.startswith(("{{", "}}"), i):
            out.append(char)
            i += 2
        elif char == "}":
            raise TemplateError(
                f"unescaped '}}' at position {i + 1} of {path!r}: write '}}}}' for a literal brace"
            )
        elif char == "{":
            end = _expression_end(path, i)
            out.append(_substitute(path[i + 1 : end], variables))
            i = end + 1
        else:
            out.append(char)
            i += 1
    return "".join(out)


def _expression_end(path: str, start: int) -> int:
    close = path.find("}", start + 1)
    reopen = path.find("{", start + 1)
    if close < 0 or 0 <= reopen < close:
        stop = len(path) if close < 0 and reopen < 0 else min(x for x in (close, reopen) if x >= 0)
        raise TemplateError(
            f"incomplete template expression {path[start:stop]!r} in {path!r}:"
            " close it with '}', or write '{{' for a literal brace"
        )
    return close


def _substitute(expression: str, variables: Mapping[str, str | int | float]) -> str:
    name, colon, spec = expression.partition(":")
    if name not in variables:
        known = ", ".join("{" + v + "}" for v in variables) or "none in this Blender"
        raise TemplateError(f"unknown variable in {{{expression}}}; known: {known}")
    value = variables[name]
    if not colon:
        return repr(value) if isinstance(value, float) else str(value)
    match = _FORMAT_SPEC.fullmatch(spec)
    if isinstance(value, str) or match is None or not spec.strip(".") or spec.endswith("."):
        raise TemplateError(
            f"invalid format in {{{expression}}}: numbers take '###', '.##' or '###.##'"
            + (f"; {name} is text" if isinstance(value, str) else "")
        )
    whole, decimals = len(match["whole"]), match["decimals"]
    if decimals is None:  # an integer, rounded half away from zero
        rounded = int(math.copysign(math.floor(abs(value) + 0.5), value))
        return f"{rounded:0{whole}d}"
    places = len(decimals)
    return f"{value:0{whole + 1 + places if whole else 0}.{places}f}"
