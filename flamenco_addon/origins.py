"""Which jobs are this file's: one tag per farm and .blend, sent with the job. No `bpy`.

Job numbers repeat across farms, and two files on one farm share nothing but
the farm, so "This file" cannot be told from job numbers or local records.
At Submit the add-on sends the coordinator an `origin` (POST /jobs), a hash
of the farm's identity and the .blend's absolute path, and "This file" asks
the farm for exactly that origin (GET /jobs?origin=). The hash says nothing
of the path to anyone who lists the farm's jobs.

The farm's identity is the id its /health names (`farm_id`, or the
certificate `fingerprint`), and its address where it names none.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Mapping
from typing import Any, Protocol

ORIGIN_CHARS = 32  # the coordinator takes up to 64
# Seconds a farm's identity is trusted before /health is asked again: a farm
# stopped and another started at the same address is noticed this late.
IDENTITY_TTL = 60.0
# /health fields that name a farm whatever its address, most specific first.
_ID_FIELDS = ("farm_id", "fingerprint")


class _Health(Protocol):
    url: str

    def health(self) -> Any: ...


def farm_identity(url: str, health: Mapping[str, Any] | None = None) -> str:
    """The farm's stable id from its /health answer, else its normalized address."""
    if isinstance(health, Mapping):
        for name in _ID_FIELDS:
            value = health.get(name)
            if isinstance(value, str) and value.strip():
                return f"{name}:{value.strip().lower()}"
    return "url:" + url.strip().rstrip("/").lower()


def blend_identity(path: str) -> str:
    """The .blend as one string per file on this computer (absolute, normalized)."""
    return os.path.normcase(os.path.normpath(os.path.abspath(path)))


def origin_of(farm: str, blend: str) -> str:
    """The tag of jobs sent from `blend` to the farm whose identity is `farm`."""
    text = f"lan-render-farm origin\n{farm}\n{blend_identity(blend)}"
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:ORIGIN_CHARS]


class Identities:
    """Farm identities by address, asked of /health at most once a minute."""

    def __init__(self, ttl: float = IDENTITY_TTL) -> None:
        self.ttl = ttl
        self._known: dict[str, tuple[str, float]] = {}
        self._lock = threading.Lock()

    def of(self, client: _Health) -> str:
        """Raises what the client raises when the farm can't be reached: an
        identity guessed from the address would hide this file's jobs on a
        farm that names itself."""
        with self._lock:
            hit = self._known.get(client.url)
        if hit is not None and time.monotonic() - hit[1] < self.ttl:
            return hit[0]
        identity = farm_identity(client.url, client.health())
        with self._lock:
            self._known[client.url] = (identity, time.monotonic())
        return identity

    def origin(self, client: _Health, blend: str) -> str:
        return origin_of(self.of(client), blend)


IDENTITIES = Identities()  # the helper process's, shared by its threads
