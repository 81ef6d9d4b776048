"""Pools and capabilities: which workers may run which jobs.

A worker offers its tags (a person's labels: `--tag gpu`, or edited later) and
the capabilities its agent reported when it registered (the render devices and
engines its Blender has, its memory and OS). A job may require tags
(`requires_tags`: all of them) and declare what it needs (`needs`: an engine, a
device, where "GPU" is any GPU device; memory; an OS). Both become plain
requirement strings ("tag:gpu", "engine:CYCLES", "device:GPU", "memory:16384",
"os:linux") that a worker's offer must contain (memory: at least as much, see
`meets`); the scheduler checks them among the runnable jobs it already reads, so the
claim costs what it did, and the job's warning names the first requirement no
online worker meets.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from coordinator.core.tags import NEEDS, check_needs, check_tags, describe_memory

__all__ = ["check_needs", "check_tags", "meets", "offers", "requirements", "unmet"]

GPU = "GPU"  # a device need that any device but the CPU meets
# A worker reports its memory as its OS counts it, a little under what the machine
# was sold with (firmware and integrated graphics keep some): a 16 GiB machine says
# about 15.5. A need for 16 GiB is met by a worker with at least this share of it.
MEMORY_SLACK = 0.9
_MEMORY = "memory:"


def offers(
    tags: Iterable[str], devices: Iterable[str], capabilities: Mapping[str, Any]
) -> frozenset[str]:
    """What a worker offers, as requirement strings."""
    out = {f"tag:{t}" for t in tags}
    devices = [str(d).upper() for d in devices]
    out.update(f"device:{d}" for d in devices)
    if any(d != "CPU" for d in devices):
        out.add(f"device:{GPU}")
    out.update(f"engine:{str(e).upper()}" for e in capabilities.get("engines", ()) or ())
    memory = capabilities.get("memory_mb")
    if isinstance(memory, int) and not isinstance(memory, bool):
        out.add(f"{_MEMORY}{memory}")
    if isinstance(capabilities.get("os"), str):
        out.add(f"os:{capabilities['os'].lower()}")
    return frozenset(out)


def row_offers(worker: Any) -> frozenset[str]:
    """A worker row's offer (its tags, devices and capabilities columns)."""
    return offers(
        json.loads(worker["tags"] or "[]"),
        json.loads(worker["devices"] or "[]"),
        json.loads(worker["capabilities"] or "{}"),
    )


def requirements(requires_tags: Sequence[str], needs: Mapping[str, Any]) -> frozenset[str]:
    """What a job requires of a worker, as requirement strings (memory_mb: "memory:MiB")."""
    named = {"memory_mb": "memory"}
    return frozenset(
        [f"tag:{t}" for t in requires_tags]
        + [f"{named.get(k, k)}:{needs[k]}" for k in NEEDS if needs.get(k)]
    )


def row_requirements(job: Any) -> frozenset[str]:
    """A job row's requirements (its requires_tags and needs columns)."""
    return requirements(json.loads(job["requires_tags"] or "[]"), json.loads(job["needs"] or "{}"))


def meets(required: frozenset[str], offered: frozenset[str]) -> bool:
    """Does a worker offering `offered` meet every requirement? Names must be
    offered as they are; memory must be at least MEMORY_SLACK of what is asked."""
    if required <= offered:
        return True
    return all(r in offered or _has_memory(r, offered) for r in required)


def _has_memory(requirement: str, offered: frozenset[str]) -> bool:
    if not requirement.startswith(_MEMORY):
        return False
    want = int(requirement[len(_MEMORY) :])
    have = next((int(o[len(_MEMORY) :]) for o in offered if o.startswith(_MEMORY)), 0)
    return have >= want * MEMORY_SLACK


def describe(requirement: str) -> str:
    """'tag:gpu' -> 'tag gpu', 'memory:16384' -> '16 GiB memory', as warnings say it."""
    kind, _, value = requirement.partition(":")
    if kind == "memory":
        return f"{describe_memory(int(value))} memory"
    if kind == "os":
        return f"OS {value}"
    return f"{kind} {value}"


def unmet(required: frozenset[str], offered: Sequence[frozenset[str]]) -> str:
    """Why none of these workers meets the requirements ("" when one does)."""
    if not required or any(meets(required, o) for o in offered):
        return ""
    for requirement in sorted(required):
        if not any(meets(frozenset([requirement]), o) for o in offered):
            return f"no online worker with {describe(requirement)}"
    wanted = ", ".join(describe(r) for r in sorted(required))
    return f"no online worker has all of {wanted}"
