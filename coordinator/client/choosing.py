"""Which of the farms found on the LAN to use: the ones that prove the token.

Anyone can advertise a farm with any name, so a client never guesses
between the farms it finds and never sends a token to one of them on the
strength of its advertisement. Each candidate is asked to prove it knows
the token the client holds (`FarmClient.prove`, over TLS; a farm that
speaks plain HTTP cannot prove anything and is passed over); the client uses
one that did and says which. Candidates are asked in parallel, each with one
deadline for its whole proof. No bpy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from coordinator.client.browser import CoordinatorBrowser, FoundCoordinator
from coordinator.client.http import FarmClient, FarmClientError

log = logging.getLogger(__name__)

PROOF_TIMEOUT = 5.0  # seconds one candidate gets to connect and prove itself, in all
MAX_PARALLEL = 16  # candidates asked at the same time by proven()
MAX_CANDIDATES = 256  # farms a search asks at most (each on its own thread)


@dataclass(frozen=True)
class Candidate:
    farm: FoundCoordinator  # as found on the LAN
    fingerprint: str  # its certificate's SHA-256, once it proved itself; "" otherwise
    why_not: str  # for a person, when it did not prove itself

    @property
    def proven(self) -> bool:
        return bool(self.fingerprint)


def check(farm: FoundCoordinator, token: str, *, timeout: float = PROOF_TIMEOUT) -> Candidate:
    """Ask one farm found on the LAN to prove it knows `token`; sends nothing secret."""
    if not farm.can_prove():
        why = "it speaks plain HTTP, so it cannot prove it is the farm"
        return Candidate(farm, "", why)
    client = FarmClient(farm.url, token=token, timeout=timeout, plain_http=False)
    try:
        return Candidate(farm, client.prove(), "")
    except FarmClientError as ex:
        return Candidate(farm, "", ex.message)
    finally:
        client.session.close()


def proven(found: list[FoundCoordinator], token: str) -> tuple[list[Candidate], list[Candidate]]:
    """(those that proved the token, those that did not), each in the order found."""
    # All at once, each within its own deadline: an impostor that answers slowly
    # costs one PROOF_TIMEOUT in all, and cannot hide the real farm behind it.
    if len(found) < 2:
        checked = [check(farm, token) for farm in found]
    else:
        with ThreadPoolExecutor(max_workers=min(len(found), MAX_PARALLEL)) as pool:
            checked = list(pool.map(lambda farm: check(farm, token), found))
    _log(checked)
    return [c for c in checked if c.proven], [c for c in checked if not c.proven]


@dataclass(frozen=True)
class Search:
    found: list[FoundCoordinator]  # every farm seen under the name asked for
    good: list[Candidate]  # those that proved the token
    bad: list[Candidate]  # those asked that did not


def search(
    token: str,
    *,
    interfaces: Sequence[str] | None,
    name: str | None,
    timeout: float,
    settle: float,
) -> Search:
    """Browse the LAN and ask each compatible farm seen to prove the token, in one
    browsing session: done `settle` seconds after the first proof, once every
    farm announced by then has answered; with none proven, the search goes on
    for `timeout` seconds, so that an impostor who answers first cannot end it
    before the real farm is seen."""
    # Keyed by name and address: an announcement that changes address (the
    # real farm answering under a name an impostor took first) is asked again.
    asked: dict[tuple[str, str], Future[Candidate]] = {}
    seen: dict[tuple[str, str], FoundCoordinator] = {}
    start = time.monotonic()
    hard_stop = start + timeout + settle + PROOF_TIMEOUT + 1.0
    settled_at: float | None = None
    with CoordinatorBrowser(interfaces=interfaces) as browser:
        while True:
            for farm in browser.snapshot():
                key = (farm.service_name, farm.url)
                if (name is not None and farm.name != name) or len(seen) >= MAX_CANDIDATES:
                    continue
                seen[key] = farm
                if farm.compatible and key not in asked:
                    # Each at once, on its own thread and deadline: none waits
                    # behind others that answer slowly.
                    asked[key] = _start_check(farm, token)
            now = time.monotonic()
            answered = [f.result() for f in asked.values() if f.done()]
            quiet = len(answered) == len(asked) and not browser.resolving()
            if settled_at is None and any(c.proven for c in answered):
                settled_at = now + settle
            if quiet and settled_at is not None and now >= settled_at:
                break
            if quiet and settled_at is None and now - start >= timeout:
                break
            if now >= hard_stop:
                break
            time.sleep(0.05)
    # A proof still running past the hard stop is left to its own deadline.
    checked = sorted((f.result() for f in asked.values() if f.done()), key=lambda c: _order(c.farm))
    _log(checked)
    good = [c for c in checked if c.proven]
    bad = [c for c in checked if not c.proven]
    return Search(sorted(seen.values(), key=_order), good, bad)


def _start_check(farm: FoundCoordinator, token: str) -> Future[Candidate]:
    future: Future[Candidate] = Future()
    thread = threading.Thread(
        target=lambda: future.set_result(_check_safely(farm, token)),
        name="farm-proof",
        daemon=True,
    )
    thread.start()
    return future


def _check_safely(farm: FoundCoordinator, token: str) -> Candidate:
    try:
        return check(farm, token)
    except Exception as ex:  # whatever an answer from the LAN did: that farm is not used
        return Candidate(farm, "", f"its answer could not be checked ({ex})")


def _order(farm: FoundCoordinator) -> tuple[str, str]:
    return (farm.name.casefold(), farm.url)


def _log(checked: list[Candidate]) -> None:
    for candidate in checked:
        if candidate.proven:
            log.info(
                "%r at %s proved it knows the farm token", candidate.farm.name, candidate.farm.url
            )
        else:
            log.info(
                "not using %r at %s: %s", candidate.farm.name, candidate.farm.url, candidate.why_not
            )


def describe(candidates: list[Candidate]) -> str:
    """One line listing farms that did not prove themselves, and why."""
    return "; ".join(f"{c.farm.name!r} at {c.farm.url} ({c.why_not})" for c in candidates)
