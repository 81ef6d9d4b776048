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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from coordinator.client.browser import FoundCoordinator
from coordinator.client.http import FarmClient, FarmClientError

log = logging.getLogger(__name__)

PROOF_TIMEOUT = 5.0  # seconds one candidate gets to connect and prove itself, in all
MAX_PARALLEL = 16  # candidates asked at the same time


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
    for candidate in checked:
        if candidate.proven:
            log.info(
                "%r at %s proved it knows the farm token", candidate.farm.name, candidate.farm.url
            )
        else:
            log.info(
                "not using %r at %s: %s", candidate.farm.name, candidate.farm.url, candidate.why_not
            )
    return [c for c in checked if c.proven], [c for c in checked if not c.proven]


def describe(candidates: list[Candidate]) -> str:
    """One line listing farms that did not prove themselves, and why."""
    return "; ".join(f"{c.farm.name!r} at {c.farm.url} ({c.why_not})" for c in candidates)
