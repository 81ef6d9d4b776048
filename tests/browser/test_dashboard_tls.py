"""The dashboard over the farm's own TLS in Chromium: it loads, signs in, and
shows the certificate's fingerprint that `serve` printed at start, for a
person to compare. The certificate is self-signed, as a person would accept
it once in the browser's warning page (here: ignore_https_errors)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright import sync_api
from playwright.sync_api import expect

from tests.browser.common import ARGS, WAIT_MS
from tests.support.components import CHROMIUM
from tests.support.localfarm import LocalFarm

pytestmark = pytest.mark.browser


@pytest.fixture
def farm(tmp_path: Path) -> Iterator[LocalFarm]:
    with LocalFarm(root=tmp_path / "farm", tls=True) as farm:
        farm.start_coordinator("--no-zeroconf", "--name", "Secure farm")
        yield farm


def test_the_dashboard_over_tls_shows_the_certificate_serve_printed(farm: LocalFarm) -> None:
    assert farm.coordinator is not None
    printed = re.search(r"TLS certificate SHA-256: ([0-9A-F:]{95})", farm.coordinator.log())
    assert printed, farm.coordinator.log()
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        try:
            page = chromium.new_context(ignore_https_errors=True).new_page()
            page.set_default_timeout(WAIT_MS)
            page.goto(f"{farm.url}/")
            assert page.url.startswith("https://")
            # a reminder that says it proves nothing, and where the proof is
            footer = page.locator("#farm-fingerprint")
            expect(footer).to_contain_text(f"certificate SHA-256 is {printed.group(1)}")
            expect(footer).to_contain_text("Reminder")
            expect(footer).to_contain_text("proves nothing")
            expect(footer).to_contain_text("padlock \u2192 certificate \u2192 SHA-256")
            page.get_by_label("Farm token").fill(farm.token)
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("#topbar")).to_be_visible()
            expect(page.locator("#farm-name")).to_have_text("Secure farm")
        finally:
            chromium.close()
