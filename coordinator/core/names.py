"""Names and paths that arrive over the network, checked before anything touches a disk.

No `bpy`, standard library only: the coordinator, the CLI, the add-on and the
worker all apply the same rule, whichever OS each runs on. A reply is
untrusted, so a name must mean the same harmless thing on Linux, macOS and
Windows: one path component, no separator of either OS, no drive or stream
(":"), nothing Windows reserves, nothing hidden. Where a name is joined to a
folder, `inside()` then checks the resolved destination, symlinks included.
"""

from __future__ import annotations

import unicodedata
from pathlib import Path

# Device names Windows reserves in every folder, with or without an extension
# ("nul.png" is the null device); the superscript digits count too (Microsoft's
# "Naming Files, Paths, and Namespaces").
_RESERVED = frozenset(
    {"CON", "PRN", "AUX", "NUL", "CONIN$", "CONOUT$"}
    | {f"{dev}{n}" for dev in ("COM", "LPT") for n in (*"123456789", "¹", "²", "³")}
)

# Most file systems (ext4, APFS, NTFS) stop a name at 255 units; UTF-8 bytes is
# the strictest count among them.
MAX_NAME_BYTES = 255


class UnsafeNameError(ValueError):
    """A name or path from elsewhere that could land outside its folder; says why."""


def name_problem(name: str) -> str | None:
    """Why `name` is not one plain path component on every OS, or None if it is."""
    if not isinstance(name, str):
        return f"it is {type(name).__name__}, not text"
    if name == "":
        return "it is empty"
    if name in (".", ".."):
        return "it names a folder ('.' or '..'), not a file"
    for char in name:
        if char in "/\\":
            return f"it contains {char!r}, a path separator; only a file name is allowed"
        if char == ":":
            return "it contains ':' (a drive letter or a Windows stream); remove it"
        if unicodedata.category(char) == "Cc":
            return f"it contains the control character {char!r}"
    return _windows_problem(name) or _size_problem(name)


def check_plain_name(name: str, *, what: str = "file name") -> str:
    """`name` itself if it is one plain path component; UnsafeNameError saying why if not.

    `what` says what the name is ("output name from the coordinator"), so the
    message tells the person which value is wrong.
    """
    problem = name_problem(name)
    if problem is not None:
        raise UnsafeNameError(f"{what} {name!r} is refused: {problem}")
    return name


def check_relative_path(rel: str, *, what: str = "path", allow_hidden: bool = False) -> str:
    """`rel` itself if it is a relative path of plain components joined by "/".

    Never absolute, never a drive, never "\\" (one separator, the same on every
    OS), no empty, "." or ".." component; each component passes
    `check_plain_name` (with `allow_hidden`, a leading dot is let through: a
    project's own ".textures" folder is odd but harmless inside its folder).
    """
    if not isinstance(rel, str) or rel == "":
        raise UnsafeNameError(f"{what} {rel!r} is refused: it is empty or not text")
    if rel.startswith("/"):
        raise UnsafeNameError(f"{what} {rel!r} is refused: it is absolute; expected a path inside")
    for part in rel.split("/"):
        hidden_ok = allow_hidden and part.startswith(".") and part not in (".", "..")
        problem = name_problem("_" + part if hidden_ok else part)  # the rest still checked
        if problem is not None:
            raise UnsafeNameError(f"{what} {rel!r} is refused: its part {part!r}: {problem}")
    return rel


def check_name_pattern(pattern: str, *, what: str = "output name") -> str:
    """`pattern` itself if every file Blender names from it is a plain name.

    A pattern is a file name with a run of "#" for the frame number
    ("frame_####"); without "#" Blender appends four digits, and "" names
    frames "0001.png". So "f." is fine (it gives "f.0001"), and the check is
    made on the pattern as Blender completes it.
    """
    if not isinstance(pattern, str):
        raise UnsafeNameError(f"{what} {pattern!r} is refused: it is not text")
    if pattern == "":
        return pattern
    problem = name_problem(pattern if "#" in pattern else pattern + "####")
    if problem is not None:
        raise UnsafeNameError(f"{what} {pattern!r} is refused: {problem}")
    return pattern


def inside(folder: str | Path, candidate: str | Path) -> Path:
    """`candidate` (relative to `folder`, or absolute) resolved, if it lies inside `folder`.

    Both are resolved first, so a symlink anywhere on the way that points out
    of the folder is refused like "..". The folder itself is refused too: a
    destination is something in it. A link made after this check is the
    caller's to guard against (create-exclusive, or a private folder).
    """
    base = Path(folder).resolve()
    target = (base / candidate).resolve()
    if target == base or not target.is_relative_to(base):
        raise UnsafeNameError(
            f"{str(candidate)!r} resolves to {str(target)!r}, which is not inside {str(base)!r}"
        )
    return target


def _windows_problem(name: str) -> str | None:
    if name.startswith("."):
        return "it is hidden (starts with '.'); give a name without the leading dot"
    if name.endswith((".", " ")):
        return "it ends with a dot or a space, which Windows drops from names"
    stem = name.split(".", 1)[0].rstrip(" ").upper()
    if stem in _RESERVED:
        return f"{stem} is a device name Windows reserves, with any extension"
    return None


def _size_problem(name: str) -> str | None:
    size = len(name.encode("utf-8", "surrogatepass"))
    if size > MAX_NAME_BYTES:
        return f"it is {size} bytes long; names are at most {MAX_NAME_BYTES}"
    return None
