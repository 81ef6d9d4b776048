"""The add-on's helper process: `python helper.py`, started by pipe.Helper. No `bpy`.

Runs with Blender's Python and Blender's module paths, outside Blender. The
add-on's package is loaded from this file's folder under a fixed name, so the
same code runs whether Blender installed it as an extension
(`bl_ext.<repo>.lan_render_farm`) or as the legacy `flamenco_addon`.
"""

from __future__ import annotations

import importlib.util
import os
import sys

PACKAGE = "farm_addon_helper"


def _load_package() -> None:
    here = os.path.dirname(os.path.abspath(__file__))
    spec = importlib.util.spec_from_file_location(
        PACKAGE, os.path.join(here, "__init__.py"), submodule_search_locations=[here]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[PACKAGE] = module
    spec.loader.exec_module(module)


if __name__ == "__main__":
    _load_package()
    service = importlib.import_module(f"{PACKAGE}.service")
    service.main()
