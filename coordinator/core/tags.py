"""Worker tags (pools) and a job's needs, as every program checks them: the
coordinator, the CLI, the add-on and the worker agent refuse the same bad tag
or need with the same words."""

from __future__ import annotations

import re
from collections.abc import Mapping

MAX_TAGS = 32
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TAG_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"

# What a job may declare it needs of a worker, as the API names them.
NEEDS = ("engine", "device", "memory_mb", "os")
NAME_VALUE = re.compile(r"^[A-Z0-9_]{1,64}$")  # an engine or device
OS_VALUE = re.compile(r"^[a-z0-9_]{1,32}$")
# What `platform.system().lower()` says, under the names people use.
OS_ALIASES = {"macos": "darwin", "mac": "darwin", "osx": "darwin", "win": "windows"}
MAX_MEMORY_MB = 2**30  # a petabyte: beyond any machine, within SQLite's and JSON's integers
# "16G", "16 GiB", "512M", "1.5GB": a number and a unit (binary: G is GiB).
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([GM])(?:I?B)?\s*$", re.IGNORECASE)


def check_tags(tags: object, field: str) -> list[str]:
    """Tags as sent (a list, or a comma-separated text): checked, unique, in order;
    ValueError naming `field` and the bad tag."""
    if isinstance(tags, str):
        tags = [t.strip() for t in tags.split(",") if t.strip()]
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ValueError(f"'{field}' must be a list of tags")
    bad = [t for t in tags if not TAG.match(t)]
    if bad:
        raise ValueError(f"'{field}': {bad[0]!r} is not a tag ({TAG_RULE})")
    unique = list(dict.fromkeys(tags))
    if len(unique) > MAX_TAGS:
        raise ValueError(f"'{field}': at most {MAX_TAGS} tags")
    return unique


def check_needs(needs: object) -> dict[str, str | int]:
    """A job's needs as the API takes them, each optional: {"engine": "CYCLES",
    "device": "GPU", "memory_mb": 16384, "os": "linux"}; ValueError naming the
    bad one. Names come back in the case workers report them."""
    if not isinstance(needs, Mapping):
        raise ValueError('\'needs\' must be an object such as {"device": "GPU"}')
    unknown = sorted(map(str, set(needs) - set(NEEDS)))
    if unknown:
        raise ValueError(f"'needs': unknown {unknown[0]!r}; a job may need: {', '.join(NEEDS)}")
    out: dict[str, str | int] = {}
    for key in NEEDS:
        value = needs.get(key)
        if value is None or value == "" or (value == 0 and key == "memory_mb"):
            continue
        out[key] = _need(key, value)
    return out


def _need(key: str, value: object) -> str | int:
    if key == "memory_mb":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_MEMORY_MB:
            raise ValueError(
                f"'needs.memory_mb' must be a whole number of MiB from 1 to {MAX_MEMORY_MB}"
                " (16384 for 16 GiB)"
            )
        return value
    if key == "os":
        name = OS_ALIASES.get(str(value).lower(), str(value).lower())
        if not isinstance(value, str) or not OS_VALUE.match(name):
            raise ValueError("'needs.os' must be an operating system: linux, windows or darwin")
        return name
    if not isinstance(value, str) or not NAME_VALUE.match(value.upper()):
        example = "CYCLES or BLENDER_EEVEE" if key == "engine" else "GPU, CUDA, OPTIX or CPU"
        raise ValueError(f"'needs.{key}' must be a name such as {example}")
    return value.upper()


def parse_memory(text: str) -> int:
    """A size as people write it ("16G", "16 GiB", "512M") in MiB; G and M are
    binary (GiB, MiB), as the workers report their memory."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write it like 16G (GiB) or 512M (MiB)")
    number, unit = float(match[1]), match[2].upper()
    mb = round(number * (1024 if unit == "G" else 1))
    if not 0 < mb <= MAX_MEMORY_MB:
        raise ValueError(f"{text!r} is not a size a machine has")
    return mb


def parse_need(text: str) -> tuple[str, str | int]:
    """One `--need KEY=VALUE` as the CLI takes it: engine=CYCLES, device=GPU,
    memory=16G, os=linux; the (API key, value) it means."""
    key, sep, value = (part.strip() for part in text.partition("="))
    if not sep or not value or key not in ("engine", "device", "memory", "os"):
        raise ValueError(
            f"{text!r}: expected engine=NAME, device=NAME, memory=SIZE or os=NAME"
            " (e.g. device=GPU, engine=CYCLES, memory=16G, os=linux)"
        )
    if key == "memory":
        return "memory_mb", parse_memory(value)
    return key, _need(key, value)


def describe_memory(mb: int) -> str:
    """16384 -> '16 GiB', 1536 -> '1.5 GiB', 512 -> '512 MiB'."""
    if mb < 1024:
        return f"{mb} MiB"
    return f"{mb / 1024:.1f}".removesuffix(".0") + " GiB"
