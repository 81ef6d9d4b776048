"""Fixtures of the dashboard's browser tests: one real coordinator and one
Chromium per module (a module may override `farm`), a fresh page per test."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
from playwright import sync_api

from coordinator.client.http import FarmClientError
from tests.browser.common import ARGS, TOKEN, WAIT_MS, Farm
from tests.support.components import CHROMIUM
from tests.support.coordinator_process import coordinator_process


@pytest.fixture(scope="module")
def farm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Farm]:
    root = tmp_path_factory.mktemp("dashboard")
    args = ["--name", "Studio farm", "--lease-seconds", "30"]
    with coordinator_process(root / "data", token=TOKEN, args=args) as running:
        api = running.client()
        try:
            yield Farm(running.url, api, root)
        finally:
            api.session.close()


@pytest.fixture(scope="module")
def browser(farm: Farm) -> Iterator[Any]:
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def leave_no_work(farm: Farm) -> Iterator[None]:
    """Tests share one farm: a test that stops half way must not leave queued work
    that a later test's worker would be handed instead of its own."""
    yield
    for job in farm.api.jobs(status="queued,active,paused", limit=500)["jobs"]:
        with contextlib.suppress(FarmClientError):
            farm.api.cancel_job(job["id"])


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1440, "height": 900}, color_scheme="dark")
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.set_default_timeout(WAIT_MS)
    yield page
    context.close()
    assert errors == [], errors
