"""`serve --tls` on 127.0.0.1 for tests: a farm as one on a LAN serves it
(https, its own certificate, proofs), which a loopback farm does only when asked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.conftest import TOKEN
from tests.support.coordinator_process import CoordinatorProcess, coordinator_process


@contextmanager
def tls_farm(root: Path, *, token: str = TOKEN) -> Iterator[CoordinatorProcess]:
    """A coordinator serving https://127.0.0.1:PORT from root/data until the block
    ends; a traceback in its log fails the test."""
    with coordinator_process(root / "data", token=token, args=["--tls"]) as farm:
        yield farm
