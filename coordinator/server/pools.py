"""Pools and capabilities: which workers may run which jobs.

A worker offers its tags (a person's labels: `--tag gpu`, or edited later) and
the capabilities its agent reported when it registered (the render devices and
engines its Blender has, its memory and OS). A job may require tags
(`requires_tags`: all of them) and declare what it needs (`needs`: an engine, a
device, where "GPU" is any GPU device). Both become plain requirement strings
("tag:gpu", "engine:CYCLES", "device:GPU") that a worker's offer must contain;
the scheduler checks them among the runnable jobs it already reads, so the
claim costs what it did, and the job's warning names the first requirement no
online worker meets.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from coordinator.core.tags import check_tags as check_tags

NEEDS = ("engine", "device")  # what a job may declare it needs
NEED_VALUE = re.compile(r"^[A-Z0-9_]{1,64}$")
GPU = "GPU"  # a device need that any device but the CPU meets


def check_needs(needs: object) -> dict[str, str]:
    """A job's needs: {"engine": "CYCLES", "device": "GPU"}, either optional."""
    if not isinstance(needs, Mapping):
        raise ValueError('\'needs\' must be an object such as {"device": "GPU"}')
    unknown = sorted(set(needs) - set(NEEDS))
    if unknown:
        raise ValueError(f"'needs': unknown {unknown[0]!r}; a job may need: {', '.join(NEEDS)}")
    out = {}
    for key in NEEDS:
        value = needs.get(key)
        if value is None or value == "":
            continue
        if not isinstance(value, str) or not NEED_VALUE.match(value.upper()):
            raise ValueError(
                f"'needs.{key}' must be a name such as "
                + ("CYCLES or BLENDER_EEVEE" if key == "engine" else "GPU, CUDA, OPTIX or CPU")
            )
        out[key] = value.upper()
    return out


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
    return frozenset(out)


def row_offers(worker: Any) -> frozenset[str]:
    """A worker row's offer (its tags, devices and capabilities columns)."""
    return offers(
        json.loads(worker["tags"] or "[]"),
        json.loads(worker["devices"] or "[]"),
        json.loads(worker["capabilities"] or "{}"),
    )


def requirements(requires_tags: Sequence[str], needs: Mapping[str, str]) -> frozenset[str]:
    """What a job requires of a worker, as requirement strings."""
    return frozenset(
        [f"tag:{t}" for t in requires_tags] + [f"{k}:{needs[k]}" for k in NEEDS if needs.get(k)]
    )


def row_requirements(job: Any) -> frozenset[str]:
    """A job row's requirements (its requires_tags and needs columns)."""
    return requirements(json.loads(job["requires_tags"] or "[]"), json.loads(job["needs"] or "{}"))


def describe(requirement: str) -> str:
    """'tag:gpu' -> 'tag gpu', as warnings say it."""
    kind, _, value = requirement.partition(":")
    return f"{kind} {value}"


def unmet(required: frozenset[str], offered: Sequence[frozenset[str]]) -> str:
    """Why none of these workers meets the requirements ("" when one does)."""
    if not required or any(required <= o for o in offered):
        return ""
    for requirement in sorted(required):
        if not any(requirement in o for o in offered):
            return f"no online worker with {describe(requirement)}"
    wanted = ", ".join(describe(r) for r in sorted(required))
    return f"no online worker has all of {wanted}"
