"""Zeroconf advertise/browse, on loopback only.

Every Zeroconf here is bound to 127.0.0.1 so nothing is multicast on a real
network. Coordinator names are unique per test so that other test runs on
the same machine (which share 127.0.0.1:5353) cannot confuse the asserts.
The fake coordinators advertise ports nothing listens on (591xx), so a
worker agent browsing loopback at the same time fails fast instead of
talking to some other test's real coordinator.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import time
import uuid
from collections.abc import Callable

import pytest
from zeroconf import ServiceInfo, ServiceStateChange

from coordinator.client import browser as discovery
from coordinator.client.browser import (
    CoordinatorBrowser,
    FoundCoordinator,
    coordinator_from_info,
    find_coordinators,
)
from coordinator.core.protocol import API_VERSION, SERVICE_TYPE
from coordinator.server import advertiser
from coordinator.server.advertiser import Advertiser, advertise

LO = ["127.0.0.1"]

pytestmark = pytest.mark.timeout(30)


def unique_name(prefix: str = "Test farm") -> str:
    return f"{prefix} {uuid.uuid4().hex[:8]}"


async def wait_until(predicate: Callable[[], bool], timeout: float = 6.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def mine(browser: CoordinatorBrowser, name: str) -> list[FoundCoordinator]:
    return [c for c in browser.snapshot() if c.name == name]


async def start_fake(name: str, port: int, workers: int | None = None) -> Advertiser:
    return await Advertiser.start(
        name=name, port=port, addresses=LO, interfaces=LO, workers=workers
    )


async def test_find_coordinators_first_finds_the_advertised_one() -> None:
    name = unique_name()
    adv = await start_fake(name, 59105, workers=2)
    try:
        assert adv.properties == {"name": name, "api": API_VERSION, "port": "59105", "workers": "2"}
        started = time.monotonic()
        # find_coordinators blocks; running it on this loop's thread would
        # stop the advertiser (same loop) from answering.
        found = await asyncio.to_thread(
            find_coordinators, interfaces=LO, first=True, name=name, timeout=8.0
        )
        assert time.monotonic() - started < 5.0  # first=True returns early
    finally:
        await adv.close()
    assert len(found) == 1
    coord = found[0]
    assert coord.name == name
    assert coord.port == 59105
    assert coord.host == "127.0.0.1"
    assert coord.url == "http://127.0.0.1:59105"
    assert coord.api_version == API_VERSION
    assert coord.compatible
    assert coord.workers == 2
    assert coord.service_name == adv.service_name
    assert coord.service_name.endswith("." + SERVICE_TYPE)


async def test_browser_sees_appear_update_and_disappear() -> None:
    name = unique_name()
    changes: list[list[FoundCoordinator]] = []
    # Built from inside a running loop: the browser must still get its own
    # zeroconf loop thread.
    browser = CoordinatorBrowser(interfaces=LO, on_change=changes.append)
    try:
        adv = await advertise(name=name, port=59106, addresses=LO, interfaces=LO, workers=0)
        try:
            await wait_until(lambda: len(mine(browser, name)) == 1)
            assert mine(browser, name)[0].workers == 0
            assert any(c.name == name for snap in changes for c in snap)

            await adv.update(workers=3)
            await wait_until(lambda: [c.workers for c in mine(browser, name)] == [3])

            await adv.update({"version": "1.2"})  # extra keys do not disturb the rest
            assert adv.properties["version"] == "1.2"
            assert adv.properties["workers"] == "3"
        finally:
            await adv.close()
        await wait_until(lambda: not mine(browser, name))
        assert not any(c.name == name for c in changes[-1])
    finally:
        await asyncio.to_thread(browser.close)
    browser.close()  # idempotent


async def test_two_coordinators_with_the_same_name_both_appear() -> None:
    name = unique_name("Same name")
    with CoordinatorBrowser(interfaces=LO) as browser:
        first = await start_fake(name, 59107)
        try:
            second = await start_fake(name, 59108)
            try:
                assert first.service_name != second.service_name
                await wait_until(lambda: len(mine(browser, name)) == 2)
                found = mine(browser, name)
                assert {c.port for c in found} == {59107, 59108}
                assert {c.service_name for c in found} == {
                    first.service_name,
                    second.service_name,
                }
            finally:
                await second.close()
            await wait_until(lambda: [c.port for c in mine(browser, name)] == [59107])
        finally:
            await first.close()


def test_find_coordinators_returns_empty_after_timeout() -> None:
    started = time.monotonic()
    found = find_coordinators(interfaces=LO, timeout=0.5, name=unique_name("Nobody"))
    assert found == []
    assert time.monotonic() - started < 4.0


async def test_reserved_txt_keys_cannot_be_overridden() -> None:
    name = unique_name()
    adv = await Advertiser.start(
        name=name,
        port=59109,
        interfaces=LO,  # addresses default to the interfaces given
        properties={"name": "evil", "api": "0", "port": "1", "note": "hi"},
    )
    async with adv:
        assert adv.properties == {"name": name, "api": API_VERSION, "port": "59109", "note": "hi"}
        await adv.update({"workers": "99"})  # not a way to set the count
        assert "workers" not in adv.properties
    await adv.close()  # idempotent


def test_instance_label_is_a_valid_dns_label() -> None:
    assert advertiser._instance_label("Studio v2.1") == "Studio v2-1"
    assert advertiser._instance_label("...") == "coordinator"
    long = advertiser._instance_label("é" * 100)
    assert len(long.encode()) <= 56
    assert long == "é" * 28


def test_addresses_ranked_ipv4_first_loopback_last() -> None:
    ranked = discovery._rank_addresses(["127.0.0.1", "fe80::1%2", "2001:db8::5", "10.9.8.7"])
    assert ranked[0] == "10.9.8.7"
    assert ranked[-1] == "127.0.0.1"
    assert ranked.index("2001:db8::5") < ranked.index("fe80::1%2")
    assert discovery._url_for("2001:db8::5", 80) == "http://[2001:db8::5]:80"
    assert discovery._url_for("fe80::1%2", 80) == "http://[fe80::1%252]:80"


def test_coordinator_from_info() -> None:
    info = ServiceInfo(
        SERVICE_TYPE,
        f"Farm-2.{SERVICE_TYPE}",
        port=9000,
        properties={"name": "Farm", "api": "1", "port": "9000", "workers": "x"},
        server="farm.local.",
        parsed_addresses=["fd00::7", "192.0.2.9"],
    )
    coord = coordinator_from_info(info)
    assert coord is not None
    assert coord.name == "Farm"
    assert coord.url == "http://192.0.2.9:9000"
    assert coord.addresses == ("192.0.2.9", "fd00::7")
    assert coord.workers is None  # unparsable count

    no_addr = ServiceInfo(SERVICE_TYPE, f"X.{SERVICE_TYPE}", port=9000, server="x.local.")
    assert coordinator_from_info(no_addr) is None


async def test_resolver_fetches_records_missing_from_the_cache() -> None:
    """The path for a PTR that arrived without its SRV/TXT/A: a QM query.

    (A QU query would be answered by unicast to port 5353, which the kernel
    may hand to another process's socket on the same host.)"""
    name = unique_name()
    with CoordinatorBrowser(interfaces=LO) as browser:
        adv = await start_fake(name, 59110, workers=4)
        try:
            await wait_until(lambda: len(mine(browser, name)) == 1)
            service = adv.service_name
            with browser._lock:  # forget it, as if only the PTR had been seen
                del browser._found[service]
                browser._seq += 1
                browser._event_seq[service] = seq = browser._seq
            fresh = discovery._new_thread_zeroconf(LO)  # empty cache
            try:
                await asyncio.to_thread(browser._resolve, fresh, SERVICE_TYPE, service, seq)
            finally:
                await asyncio.to_thread(fresh.close)
            assert [c.workers for c in mine(browser, name)] == [4]
        finally:
            await adv.close()


def test_close_cancels_pending_resolution(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="asyncio")
    browser = CoordinatorBrowser(interfaces=LO)
    ghost = f"{unique_name('Ghost')}.{SERVICE_TYPE}"
    # An Added event for a service nobody answers for: resolving it would
    # take the full resolve timeout.
    browser._handle(browser._zc, SERVICE_TYPE, ghost, ServiceStateChange.Added)
    time.sleep(0.2)
    started = time.monotonic()
    browser.close()
    assert time.monotonic() - started < 2.0
    assert ghost not in {c.service_name for c in browser.snapshot()}
    # The pending request was cancelled, not left behind in zeroconf's
    # stopped loop (Python would later print "Task was destroyed but it is
    # pending!").
    loop = browser._zc.loop
    assert loop is not None
    assert not asyncio.all_tasks(loop)
    gc.collect()
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]


def test_on_change_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def broken(_: list[FoundCoordinator]) -> None:
        raise RuntimeError("boom")

    with CoordinatorBrowser(interfaces=LO, on_change=broken) as browser:
        info = ServiceInfo(
            SERVICE_TYPE,
            f"{unique_name('Direct')}.{SERVICE_TYPE}",
            port=59111,
            properties={"name": "Direct"},
            server="direct.local.",
            parsed_addresses=LO,
        )
        with browser._lock:
            browser._seq += 1
            browser._event_seq[info.name] = seq = browser._seq
        browser._apply(info.name, seq, info)
        assert [c.port for c in browser.snapshot() if c.service_name == info.name] == [59111]
    assert any("on_change" in r.getMessage() for r in caplog.records)
