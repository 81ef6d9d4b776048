"""Worker tags (pools), as every program checks them: the coordinator, the CLI
and the worker agent refuse the same bad tag with the same words."""

from __future__ import annotations

import re

MAX_TAGS = 32
TAG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
TAG_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"


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
