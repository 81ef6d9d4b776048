"""The extension zip's wheels, for a Blender that loads the add-on the legacy way. No `bpy`.

Blender 4.2+ installs an extension's wheels itself. Blender 3.x-4.1 can load
the same zip, unpacked into its add-ons folder, as a legacy add-on (bl_info);
this module then does what 4.2 would: unpacks each wheel (a zip of Python
packages) into a folder inside the add-on, once, and puts that folder on
sys.path. So neither an artist's computer nor a farm machine needs pip, a
checkout or PYTHONPATH.
"""

from __future__ import annotations

import logging
import os
import sys
import zipfile
from pathlib import Path

log = logging.getLogger(__name__)

SITE = "_site"  # inside the add-on's folder
DONE = ".unpacked"  # names of the wheels already there, one a line


class WheelError(Exception):
    """A wheel could not be unpacked; the message says which and why."""


def ensure(addon_dir: Path) -> Path | None:
    """Unpack new wheels of addon_dir/wheels and import from them; None when there are none."""
    wheels = sorted((addon_dir / "wheels").glob("*.whl"))
    if not wheels:
        return None
    site = addon_dir / SITE
    done_file = site / DONE
    done = set(done_file.read_text(encoding="utf-8").split()) if done_file.is_file() else set()
    for wheel in wheels:
        if wheel.name not in done:
            unpack(wheel, site)
            done.add(wheel.name)
            done_file.write_text("\n".join(sorted(done)) + "\n", encoding="utf-8")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    return site


def unpack(wheel: Path, site: Path) -> None:
    """Every member inside `site`, none outside it (a wheel is a zip: names are checked)."""
    site.mkdir(parents=True, exist_ok=True)
    root = os.path.realpath(site)
    try:
        with zipfile.ZipFile(wheel) as archive:
            for member in archive.namelist():
                dest = os.path.realpath(os.path.join(root, member))
                if os.path.commonpath([root, dest]) != root:
                    raise WheelError(f"{wheel.name} holds {member!r}, outside its folder")
            archive.extractall(root)
    except (OSError, zipfile.BadZipFile) as ex:
        raise WheelError(f"can't unpack {wheel.name}: {ex}") from ex
    log.info("unpacked %s", wheel.name)
