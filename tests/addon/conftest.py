"""Fixtures the add-on's tests share."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from flamenco_addon.pipe import Helper
from flamenco_addon.runtime import Runtime
from tests.support.addon_helpers import REPO, site_packages
from tests.support.localfarm import farm_fixture

# A real coordinator (no workers, no zeroconf) for each test: the tests count the
# farm's jobs, start workers of their own and stop the farm, so none shares one.
farm = farm_fixture(lease_seconds=5.0, scope="function")


@pytest.fixture
def state(tmp_path: Path) -> Iterator[Runtime]:
    """The add-on's runtime with a real helper process (this Python, the add-on's
    wheels' site-packages), shut down after the test."""
    runtime = Runtime(
        helper=Helper(sys.executable, [str(REPO), site_packages()], tmp_path / "h.log")
    )
    yield runtime
    runtime.shutdown()
