"""Which farms the panel lists and which one jobs go to. No `bpy` here.

Anyone on a LAN can advertise a farm, so being found proves nothing: a farm
is used only when the artist clicked it, typed its address, or runs it on
this computer (whose token the add-on reads from the farm's own folder).
The farm this computer runs is listed once, as "This computer", at the
address and with the token that reach it, however many ways the network
announces it. Farms that do not answer are listed as such.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from .submission import is_local_url

THIS_COMPUTER = "This computer"


@dataclass(frozen=True)
class Found:
    """One farm announced on the network, as the helper process saw it."""

    name: str  # its advertised name
    url: str  # built from an address it announced
    host: str  # that address
    port: int
    workers: int | None  # None when not advertised
    service_name: str  # unique per advertisement on the LAN
    here: bool = False  # one of the addresses is this computer's
    reachable: bool | None = None  # its /health answered; None: not asked yet

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Found:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclass(frozen=True)
class FarmRow:
    """One row of the panel's farm list."""

    url: str  # what a click chooses
    label: str  # what the row says
    here: bool  # the farm this computer runs
    reachable: bool | None  # False: shown greyed, "not answering"


def rows(found: list[Found], local_url: str) -> list[FarmRow]:
    """This computer's farm first (when it runs), then each other farm once."""
    out: list[FarmRow] = []
    if local_url:
        out.append(FarmRow(local_url, f"{THIS_COMPUTER} ({_port(local_url)})", True, True))
    local_port = _port(local_url) if local_url else None
    seen: set[tuple[str, int]] = set()
    for farm in sorted(found, key=lambda f: (f.name.lower(), f.host)):
        if farm.here and farm.port == local_port:
            continue  # the local farm, announced on the LAN: already listed
        if (farm.name, farm.port) in seen:
            continue  # one farm announced on several addresses or interfaces
        seen.add((farm.name, farm.port))
        out.append(FarmRow(farm.url, label(farm), False, farm.reachable))
    return out


def label(found: Found) -> str:
    """How the panel lists one coordinator."""
    if found.reachable is False:
        return f"{found.name} ({found.host}): not answering"
    if found.workers is None:
        return f"{found.name} ({found.host})"
    plural = "" if found.workers == 1 else "s"
    return f"{found.name}: {found.workers} worker{plural} ({found.host})"


def choose(clicked: str, local_url: str) -> str:
    """The farm jobs go to: the one clicked, else the one this computer runs.
    Never the first one found: anyone can announce a farm."""
    return clicked or local_url


def token_for(url: str, *, local_url: str, local_token: str, typed: str) -> str:
    """The farm this computer runs has its own token (read from its folder), even
    when another farm's token is typed in the preferences; any other farm gets
    the typed one."""
    if local_url and local_token and is_local_url(url) and _port(url) == _port(local_url):
        return local_token
    return typed


def farm_key(token: str) -> str:
    """A farm's identity for the job records: only its token tells farms apart
    (its address changes with the network, its job numbers repeat across farms)."""
    return hashlib.sha256(f"lan-render-farm:{token}".encode()).hexdigest()[:16] if token else ""


def _port(url: str) -> int | None:
    tail = url.rstrip("/").rsplit(":", 1)[-1]
    return int(tail) if tail.isdigit() else None
