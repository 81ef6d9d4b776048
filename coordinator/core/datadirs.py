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


PRIVATE_DIR_MODE = 0o700  # the farm's folders: only their owner may list or enter them


def make_private_dir(path: Path) -> Path:
    """Create `path` (and missing parents) so that it is private from the start.

    The folder itself is made with mode 0700 by the mkdir call (the umask can
    only narrow it), never made readable first and narrowed afterwards; missing
    parents get the usual modes, as `mkdir -p` gives them. A folder that already
    exists is left as it is: its owner chose its mode.
    """
    path = Path(path)
    if not path.is_dir():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(path, PRIVATE_DIR_MODE)
        except FileExistsError:  # made meanwhile by another process, or a file
            if not path.is_dir():
                raise
    return path
