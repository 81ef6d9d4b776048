"""Where the real components the tests use live, and whether they are here.

One place for the paths; `tests/conftest.py` turns the markers `blender`,
`bpy`, `gui` and `browser` into skips when a component is missing, so a test
says what it needs with a marker and never with its own skip. Under
`make test` (FARM_REQUIRE_COMPONENTS=1) a missing component is an error
instead: CI has them all, and a test that needs Blender must run there.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
DEBIAN_BLENDER = "/usr/bin/blender"  # Debian's blender package (3.4)
BPY_PYTHON = REPO / ".venv-bpy" / "bin" / "python"  # a Python with PyPI's bpy==5.0.1
CHROMIUM = "/usr/bin/chromium"  # Debian's chromium, driven by Playwright

REQUIRE_ENV = "FARM_REQUIRE_COMPONENTS"

# marker -> (is it here?, what to install)
_CHECKS = {
    "blender": (lambda: Path(DEBIAN_BLENDER).is_file(), "Debian's blender (make setup-test)"),
    "bpy": (lambda: BPY_PYTHON.is_file(), ".venv-bpy with bpy==5.0.1 (make setup-test)"),
    "gui": (
        lambda: bool(shutil.which("xvfb-run") and shutil.which("xdotool")),
        "xvfb-run and xdotool (make setup-test)",
    ),
    "browser": (lambda: Path(CHROMIUM).is_file(), "Debian's chromium (make setup-test)"),
}
COMPONENT_MARKERS = tuple(_CHECKS)


def missing(marker: str) -> str | None:
    """What to install for a test marked `marker`, or None when it is here."""
    present, what = _CHECKS[marker]
    return None if present() else what


def required() -> bool:
    """Whether a missing component fails the run rather than skipping."""
    return os.environ.get(REQUIRE_ENV, "") not in ("", "0")
