"""Finds the Blender a worker renders with and asks it its version. No bpy.

A worker renders either with the Blender binary or with a Python that has the
``bpy`` module; both are asked here, once at start-up (blender.py runs them).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

BlenderKind = Literal["binary", "bpy-module"]

# The binary's `--version` output starts with "Blender 3.4.1" (2.80-5.0; an LTS
# build adds " LTS", an alpha "Alpha" after the number).
_BINARY_VERSION_RE = re.compile(r"^Blender (\d+)\.(\d+)(?:\.(\d+))?", re.MULTILINE)
# What _BPY_PROBE prints.
_BPY_VERSION_RE = re.compile(r"^FARM_BPY_VERSION (\d+) (\d+) (\d+)$", re.MULTILINE)
_BPY_PROBE = "import bpy; print('FARM_BPY_VERSION', *bpy.app.version)"


class BlenderNotFound(RuntimeError):
    """No Blender to render with; the message says what to install or pass."""


class NotABlender(RuntimeError):
    """The executable is neither Blender nor a Python with the bpy module."""


@dataclass(frozen=True)
class BlenderInfo:
    version: str  # "3.4.1"
    version_tuple: tuple[int, int, int]  # (3, 4, 1)
    path: str  # the executable
    kind: BlenderKind  # "binary": blender -b ...; "bpy-module": python runner.py --bpy


def find_blender(explicit: str | None = None, *, env: Mapping[str, str] | None = None) -> str:
    """The Blender to use: the explicit path, else $BLENDER, else `blender` on PATH."""
    env = os.environ if env is None else env
    for source, candidate in (("--blender", explicit), ("$BLENDER", env.get("BLENDER"))):
        if candidate:
            found = shutil.which(candidate, path=env.get("PATH", os.defpath))
            if found is None:
                raise BlenderNotFound(f"{source} names {candidate!r}, which is not an executable")
            return os.path.abspath(found)  # not resolved: a venv's python must stay in its venv
    found = shutil.which("blender", path=env.get("PATH", os.defpath))
    if found is None:
        raise BlenderNotFound(
            "no Blender found: install Blender (e.g. `apt install blender`, or from "
            "blender.org) and put `blender` on PATH, set BLENDER=/path/to/blender, or pass "
            "--blender PATH (a Python with the `bpy` module from PyPI works too)"
        )
    return os.path.abspath(found)


def probe(exe: str, *, timeout: float = 120) -> BlenderInfo:
    """Asks exe for its Blender version.

    An executable named python* is asked to `import bpy`; anything else is run
    as the Blender binary (running an unknown program with Python's `-c` could
    do anything).
    """
    if _looks_like_python(exe):
        info, output = _probe_bpy(exe, timeout)
        question = f"`{exe} -c 'import bpy'` did not print bpy's version"
    else:
        info, output = _probe_binary(exe, timeout)
        question = f"`{exe} -b --factory-startup --version` did not print a Blender version"
    if info is not None:
        return info
    lines = output.strip().splitlines()
    said = lines[-1][:300] if lines else "nothing"
    raise NotABlender(
        f"{exe} is not a usable Blender: {question} (its last words: {said}). "
        "Pass the Blender binary, or a Python (named python*) that has the bpy module."
    )


def _looks_like_python(exe: str) -> bool:
    return Path(exe).name.startswith("python")


def _probe_binary(exe: str, timeout: float) -> tuple[BlenderInfo | None, str]:
    output = _run_probe([exe, "-b", "--factory-startup", "--version"], timeout)
    match = _BINARY_VERSION_RE.search(output)
    if match is None:
        return None, output
    version = (int(match[1]), int(match[2]), int(match[3] or 0))
    return _info(version, exe, "binary"), output


def _probe_bpy(exe: str, timeout: float) -> tuple[BlenderInfo | None, str]:
    output = _run_probe([exe, "-c", _BPY_PROBE], timeout)
    match = _BPY_VERSION_RE.search(output)
    if match is None:
        return None, output
    version = (int(match[1]), int(match[2]), int(match[3]))
    return _info(version, exe, "bpy-module"), output


def _info(version: tuple[int, int, int], exe: str, kind: BlenderKind) -> BlenderInfo:
    text = ".".join(str(v) for v in version)
    return BlenderInfo(version=text, version_tuple=version, path=exe, kind=kind)


def _run_probe(command: list[str], timeout: float) -> str:
    try:
        proc = subprocess.run(
            command, capture_output=True, timeout=timeout, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return f"(no answer within {timeout:g} s)"
    except OSError as ex:
        raise NotABlender(f"cannot run {command[0]}: {ex}") from ex
    return proc.stdout.decode("utf-8", "replace") + proc.stderr.decode("utf-8", "replace")
