"""Finding coordinators on the LAN by zeroconf (mDNS / DNS-SD).

:class:`CoordinatorBrowser` and :func:`find_coordinators` are plain
blocking/threaded code for the worker agent, the CLI and the Blender add-on.
They never need an asyncio loop from the caller: the browser's ``Zeroconf``
always runs its own loop thread, even when it is created from inside a
running event loop. The coordinator's side, the advertisement, is
``coordinator.server.serve.advertiser``.

``interfaces`` everywhere is a list of local IP addresses to use (``None``:
every interface). Tests always pass ``["127.0.0.1"]`` so nothing is
multicast on a real network.

Quirks found on loopback (zeroconf 0.154, Linux), kept in mind below:

* With ``interfaces=["127.0.0.1"]`` several Zeroconf instances in one or
  several processes share port 5353 (SO_REUSEADDR/SO_REUSEPORT) and see each
  other's multicast on ``lo``; nothing leaves the machine.
* Unicast replies get lost when several mDNS stacks share port 5353 on one
  host: the kernel delivers a unicast datagram to one of the sockets only.
  zeroconf asks QU ("answer me by unicast") first by default, so the browser
  and the resolver here ask QM questions only (see ``_QM``). This also
  matters in production: coordinator, worker agent and Blender add-on often
  run on the same machine, next to avahi.
* ServiceBrowser runs every handler in one thread. Resolving a service in the
  handler (the zeroconf examples do) blocks all later events for up to the
  resolve timeout whenever a PTR arrives without its SRV/TXT/A, e.g. for a
  service that is already gone. With a few test processes on 127.0.0.1 that
  delayed TXT updates and removals by many seconds, so the handler only reads
  the cache and leaves real queries to a small resolver pool.
* A resolution still pending when the browser closes must be cancelled, or
  Python prints "Task was destroyed but it is pending!" at exit.
* ``find_coordinators`` blocks. Calling it from the thread that runs an
  :class:`Advertiser`'s event loop starves the advertiser (it cannot answer
  queries), so async callers must use ``asyncio.to_thread``.
* Two advertisers on one host must not share a host name (``<host>.local.``):
  closing one sends a goodbye for the shared A record. Each advertiser gets
  its own random host label; URLs are built from addresses anyway.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from types import TracebackType

from zeroconf import (
    DNSQuestionType,
    InterfaceChoice,
    InterfacesType,
    ServiceBrowser,
    ServiceInfo,
    ServiceStateChange,
    Zeroconf,
)

from coordinator.core.network import parse_ip
from coordinator.core.protocol import API_VERSION, SERVICE_TYPE

__all__ = ["CoordinatorBrowser", "FoundCoordinator", "find_coordinators"]

log = logging.getLogger(__name__)

# How long a resolver thread waits for the SRV/TXT/A records of a service
# whose announcement did not carry them all.
_RESOLVE_TIMEOUT_MS = 3000
_RESOLVER_THREADS = 4
# Ask every question QM (answer by multicast). A QU question is answered by
# unicast to port 5353, and when several mDNS stacks share that port on one
# host (coordinator, worker agent, Blender, avahi; or every test process on
# 127.0.0.1) the kernel hands a unicast reply to just one of their sockets,
# often not the one that asked. zeroconf asks QU first by default.
_QM = DNSQuestionType.QM


def _interfaces_arg(interfaces: Sequence[str] | None) -> InterfacesType:
    return InterfaceChoice.All if interfaces is None else list(interfaces)


# ---------------------------------------------------------------------------
# Browse side: no asyncio needed from the caller.


@dataclass(frozen=True)
class FoundCoordinator:
    """One coordinator seen on the LAN."""

    name: str  # display name from TXT (falls back to the instance label)
    url: str  # e.g. "http://192.168.1.20:8765", built from an address, not .local
    host: str  # the address the url uses
    port: int
    api_version: str  # TXT "api"; "" when missing
    workers: int | None  # TXT "workers"; None when not advertised
    service_name: str  # full DNS-SD name, unique on the LAN
    addresses: tuple[str, ...] = ()  # every advertised address, best first
    tls: bool = False  # TXT "tls=1": it serves https (the url says so too)
    fingerprint: str = ""  # TXT "fp": its certificate's SHA-256 as advertised; a hint only

    def can_prove(self) -> bool:
        """Whether it could prove it holds a token: only over TLS. A farm found on the
        LAN is trusted with nothing until it has (FarmClient.prove)."""
        return self.tls and self.url.startswith("https://")

    @property
    def compatible(self) -> bool:
        """Whether it speaks this client's API version."""
        return self.api_version == API_VERSION


def _local_networks() -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    try:
        import ifaddr

        nets: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for adapter in ifaddr.get_adapters():
            for ip in adapter.ips:
                addr = ip.ip if isinstance(ip.ip, str) else ip.ip[0]
                with contextlib.suppress(ValueError):
                    nets.append(ipaddress.ip_network(f"{addr}/{ip.network_prefix}", strict=False))
        return nets
    except Exception:  # pragma: no cover - best effort only
        return []


def _rank_addresses(addresses: Sequence[str]) -> list[str]:
    """Best first: IPv4 on one of our subnets, other IPv4, routable IPv6,
    link-local, loopback last (only useful when the coordinator is local)."""
    nets = _local_networks()

    def rank(text: str) -> tuple[int, int]:
        ip = parse_ip(text)
        if ip is None:
            return (9, 0)
        if ip.is_loopback:
            return (8, 0 if ip.version == 4 else 1)
        if ip.is_link_local:
            return (6, 0 if ip.version == 4 else 1)
        on_link = any(ip.version == net.version and ip in net for net in nets)
        if ip.version == 4:
            return (0 if on_link else 1, 0)
        return (2 if on_link else 3, 0)

    # sorted() is stable, so the advertiser's order breaks ties.
    return sorted(dict.fromkeys(addresses), key=rank)


def _url_for(address: str, port: int, *, tls: bool = False) -> str:
    scheme = "https" if tls else "http"
    ip = parse_ip(address)
    if ip is not None and ip.version == 6:
        return f"{scheme}://[{address.replace('%', '%25')}]:{port}"
    return f"{scheme}://{address}:{port}"


def _decode_txt(info: ServiceInfo) -> dict[str, str]:
    txt: dict[str, str] = {}
    for key, value in (info.properties or {}).items():
        if value is None:
            continue
        txt[key.decode("utf-8", "replace")] = value.decode("utf-8", "replace")
    return txt


def coordinator_from_info(info: ServiceInfo) -> FoundCoordinator | None:
    """Turn a resolved ServiceInfo into a FoundCoordinator (None if unusable)."""
    txt = _decode_txt(info)
    port = info.port
    if not port:
        try:
            port = int(txt.get("port", ""))
        except ValueError:
            return None
    addresses = _rank_addresses(info.parsed_scoped_addresses())
    if not addresses:
        return None
    workers: int | None
    try:
        workers = int(txt["workers"])
    except (KeyError, ValueError):
        workers = None
    instance = (
        info.name[: -len(SERVICE_TYPE) - 1] if info.name.endswith(SERVICE_TYPE) else info.name
    )
    tls = txt.get("tls") == "1"
    return FoundCoordinator(
        name=txt.get("name") or instance,
        url=_url_for(addresses[0], port, tls=tls),
        host=addresses[0],
        port=port,
        api_version=txt.get("api", ""),
        workers=workers,
        service_name=info.name,
        addresses=tuple(addresses),
        tls=tls,
        fingerprint=txt.get("fp", "")[:200],
    )


def _new_thread_zeroconf(interfaces: Sequence[str] | None) -> Zeroconf:
    """A Zeroconf that runs its own loop thread.

    Zeroconf() attaches to the caller's running asyncio loop if there is one;
    its blocking calls (get_service_info, close) would then deadlock or warn.
    Building it in a fresh thread, where no loop runs, gives it its own.
    """
    choice = _interfaces_arg(interfaces)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return Zeroconf(interfaces=choice)
    result: list[Zeroconf] = []
    error: list[BaseException] = []

    def build() -> None:
        try:
            result.append(Zeroconf(interfaces=choice))
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=build, name="zeroconf-setup", daemon=True)
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


class CoordinatorBrowser:
    """Live view of the coordinators on the LAN, kept by background threads.

    ``on_change`` (optional) is called with the new snapshot, from one of the
    browser's threads, whenever a coordinator appears, changes or goes away;
    it must be quick and must not call :meth:`close`.
    """

    def __init__(
        self,
        *,
        interfaces: Sequence[str] | None = None,
        on_change: Callable[[list[FoundCoordinator]], None] | None = None,
    ) -> None:
        self._lock = threading.Lock()
        self._found: dict[str, FoundCoordinator] = {}
        # Latest event number per service name: a resolution started for an
        # older event (or before a removal) must not overwrite newer state.
        self._event_seq: dict[str, int] = {}
        self._seq = 0
        self._requests: set[concurrent.futures.Future[bool]] = set()
        # Names announced whose records are still being asked for: a caller
        # that wants every farm on the LAN waits for these before it decides.
        self._resolving: set[str] = set()
        self._on_change = on_change
        self._closed = False
        # Services whose records are not all cached yet are resolved here, so
        # one slow or dead service cannot hold up the events of the others.
        self._resolver = concurrent.futures.ThreadPoolExecutor(
            max_workers=_RESOLVER_THREADS, thread_name_prefix="coordinator-resolve"
        )
        self._zc = _new_thread_zeroconf(interfaces)
        try:
            self._browser = ServiceBrowser(
                self._zc, SERVICE_TYPE, handlers=[self._handle], question_type=_QM
            )
        except BaseException:
            self._resolver.shutdown(wait=False)
            self._zc.close()
            raise

    def _handle(
        self,
        zeroconf: Zeroconf,
        service_type: str,
        name: str,
        state_change: ServiceStateChange,
    ) -> None:
        """ServiceBrowser callback; runs in the browser's own thread."""
        with self._lock:
            if self._closed:
                return
            self._seq += 1
            seq = self._seq
            if state_change is ServiceStateChange.Removed:
                self._event_seq.pop(name, None)
                changed = self._found.pop(name, None) is not None
            else:
                self._event_seq[name] = seq
                changed = False
        if state_change is ServiceStateChange.Removed:
            if changed:
                self._notify()
            return
        info = ServiceInfo(service_type, name)
        if info.load_from_cache(zeroconf):  # the usual case: the announcement had it all
            self._apply(name, seq, info)
            return
        with self._lock:
            self._resolving.add(name)
        try:
            self._resolver.submit(self._resolve, zeroconf, service_type, name, seq)
        except RuntimeError:  # shut down meanwhile
            with self._lock:
                self._resolving.discard(name)

    def _resolve(self, zeroconf: Zeroconf, service_type: str, name: str, seq: int) -> None:
        """Resolver thread: ask for the missing records (QM) and wait for them."""
        try:
            self._ask(zeroconf, service_type, name, seq)
        finally:
            with self._lock:
                if self._event_seq.get(name) in (seq, None):
                    self._resolving.discard(name)

    def _ask(self, zeroconf: Zeroconf, service_type: str, name: str, seq: int) -> None:
        info = ServiceInfo(service_type, name)
        loop = zeroconf.loop
        if loop is None:
            return
        coro = info.async_request(zeroconf, _RESOLVE_TIMEOUT_MS, question_type=_QM)
        with self._lock:
            if self._closed:
                coro.close()
                return
            # Kept so close() can cancel it: a request still pending when
            # zeroconf stops its loop would be reported as a destroyed task.
            future = asyncio.run_coroutine_threadsafe(coro, loop)
            self._requests.add(future)
        try:
            complete = future.result(_RESOLVE_TIMEOUT_MS / 1000 + 1.0)
        except Exception:  # cancelled by close(), timed out, or zeroconf closed
            complete = False
        finally:
            with self._lock:
                self._requests.discard(future)
        if complete:
            self._apply(name, seq, info)

    def _apply(self, name: str, seq: int, info: ServiceInfo) -> None:
        found = coordinator_from_info(info)
        with self._lock:
            if self._closed or self._event_seq.get(name) != seq or found is None:
                return  # superseded, removed, or unusable: keep what we had
            changed = self._found.get(name) != found
            self._found[name] = found
        if changed:
            self._notify()

    def _notify(self) -> None:
        if self._on_change is None or self._closed:
            return
        try:
            self._on_change(self.snapshot())
        except Exception:
            log.exception("coordinator browser on_change callback failed")

    def resolving(self) -> int:
        """How many services were announced but are still being asked for their address."""
        with self._lock:
            return len(self._resolving)

    def snapshot(self) -> list[FoundCoordinator]:
        """The coordinators seen right now, sorted by name."""
        with self._lock:
            found = list(self._found.values())
        return sorted(found, key=lambda c: (c.name.casefold(), c.service_name))

    def close(self) -> None:
        """Stop browsing and release the sockets. Safe to call twice."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            requests = list(self._requests)
        self._resolver.shutdown(wait=False, cancel_futures=True)
        for request in requests:
            request.cancel()
        self._browser.cancel()
        self._zc.close()

    def __enter__(self) -> CoordinatorBrowser:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def find_coordinators(
    *,
    timeout: float = 3.0,
    interfaces: Sequence[str] | None = None,
    first: bool = False,
    settle: float = 0.0,
    name: str | None = None,
) -> list[FoundCoordinator]:
    """Browse for ``timeout`` seconds and return the coordinators seen.

    With ``first=True`` it returns soon after one is found: ``settle`` seconds
    later, and not before every service announced by then has answered or
    given up (at most one resolve timeout more), so that a second farm is
    seen rather than passed over. ``name`` keeps only coordinators
    advertising that display name. Blocking: from async code, run it with
    ``asyncio.to_thread``.
    """

    def wanted(found: list[FoundCoordinator]) -> list[FoundCoordinator]:
        return [c for c in found if name is None or c.name == name]

    done = threading.Event()

    def on_change(found: list[FoundCoordinator]) -> None:
        if first and wanted(found):
            done.set()

    with CoordinatorBrowser(interfaces=interfaces, on_change=on_change) as browser:
        if first and wanted(browser.snapshot()):
            done.set()
        if done.wait(max(0.0, timeout)) and settle > 0:
            # One browsing session throughout: the answers of the others are
            # already on their way, and a fresh session would start over.
            time.sleep(settle)
            give_up = time.monotonic() + _RESOLVE_TIMEOUT_MS / 1000 + 1.0
            while browser.resolving() and time.monotonic() < give_up:
                time.sleep(0.05)
        return wanted(browser.snapshot())
