"""The Jobs list's status filter in Blender 5.0 (PyPI's bpy==5.0.1, the add-on
enabled the legacy way) offers every job status the farm has (core.protocol's
JobStatus), in the farm's order, with the labels the artist reads."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from coordinator.core.protocol import JobStatus
from tests.addon.test_blender34 import legacy_env
from tests.support.addon_helpers import run_bpy

pytestmark = [pytest.mark.bpy, pytest.mark.timeout(120)]

SCRIPT = r"""
import json, bpy, addon_utils
assert addon_utils.enable("flamenco_addon", default_set=True) is not None
prop = bpy.types.WindowManager.bl_rna.properties["farm"].fixed_type.properties["status_filter"]
items = [[i.identifier, i.name, i.description] for i in prop.enum_items]
print("OUT " + json.dumps(items))
print("ADDON_TEST_DONE")
"""


def test_the_status_filter_offers_the_farms_statuses_in_order(tmp_path: Path) -> None:
    output = run_bpy(SCRIPT, env=legacy_env(tmp_path))
    items = json.loads(next(x for x in output.splitlines() if x.startswith("OUT "))[4:])
    assert items[0] == ["ALL", "All", "Every status"]
    assert [i[0] for i in items[1:]] == [s.value for s in JobStatus]
    assert items[1:4] == [
        ["queued", "Queued", "Only queued jobs"],
        ["active", "Active", "Only active jobs"],
        ["paused", "Paused", "Only paused jobs"],
    ]
    assert [i[1] for i in items[4:]] == ["Completed", "Failed", "Canceled"]
