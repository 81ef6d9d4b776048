"""The worker's own secret for each farm, kept between runs in its cache folder.

The farm token is only needed for the first registration; after that the
worker presents the secret the coordinator gave it. Whoever reads that secret
can act as this worker, so the file is private (0600) from the moment it
exists, never readable for a moment and narrowed afterwards.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from pathlib import Path
from typing import Any

from coordinator.client.http import WorkerCredentials
from coordinator.core.datadirs import make_private_dir

log = logging.getLogger(__name__)

FILE_NAME = "credentials.json"  # inside the worker's cache folder


def load_credentials(path: Path, url: str) -> WorkerCredentials | None:
    """What this worker was given by the farm at url; None when it never registered there."""
    try:
        entry = _read(path)[url]
        return WorkerCredentials(entry["worker_id"], entry["secret"], entry["lease_seconds"])
    except (KeyError, TypeError):
        return None


def save_credentials(path: Path, url: str, creds: WorkerCredentials) -> None:
    """Remember creds for url, keeping those of other farms; written whole or not at all."""
    data = _read(path)
    data[url] = {
        "worker_id": creds.worker_id,
        "secret": creds.secret,
        "lease_seconds": creds.lease_seconds,
    }
    make_private_dir(path.parent)  # the cache folder: the worker's alone
    tmp = path.with_name(path.name + ".tmp")
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()  # a leftover could have any mode; O_EXCL makes ours
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1)
    tmp.replace(path)


def _read(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as ex:
        log.warning("ignoring unreadable %s: %s", path, ex)
        return {}
    return data if isinstance(data, dict) else {}
