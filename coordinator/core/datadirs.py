"""Where the farm keeps its data on each OS, for the coordinator and the add-on alike.

Light on purpose (stdlib only): the add-on imports it inside Blender.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

APP_FOLDER = "blender-farm"


def user_data_dir(platform: str = sys.platform) -> Path:
    """The per-user data folder of the farm: %LOCALAPPDATA%, ~/Library/Application
    Support or $XDG_DATA_HOME (~/.local/share), then blender-farm/."""
    if platform == "win32":
        base = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif platform == "darwin":
        base = Path.home() / "Library" / "Application Support"
    else:
        base = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return base / APP_FOLDER


def coordinator_data_dir() -> Path:
    """Where a coordinator keeps its database and files unless told otherwise
    (`serve`), and where a client on the same machine finds its token.txt."""
    return user_data_dir() / "coordinator"


def local_farm_data_dir() -> Path:
    """Where the add-on's "Start a farm on this computer" keeps its data unless
    the preferences say otherwise."""
    return user_data_dir() / "local-farm"
