"""`serve --tls` on 127.0.0.1 for tests: a farm as one on a LAN serves it
(https, its own certificate, proofs), which a loopback farm does only when asked."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from coordinator.core.network import free_port
from tests.conftest import TOKEN
from tests.support.coordinator_process import (
    REPO,
    CoordinatorProcess,
    environment,
    serve_command,
    stop,
    wait_until_healthy,
)


@contextmanager
def tls_farm(root: Path, *, token: str = TOKEN) -> Iterator[CoordinatorProcess]:
    """A coordinator serving https://127.0.0.1:PORT from root/data until the block
    ends; a traceback in its log fails the test."""
    port = free_port()
    data_dir, log = root / "data", root / "serve.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            serve_command(port, data_dir, ["--tls"]),
            cwd=REPO,
            env={**environment(), "FARM_TOKEN": token},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    farm = CoordinatorProcess(f"https://127.0.0.1:{port}", token, data_dir, log, process)
    try:
        wait_until_healthy(farm)
        yield farm
    finally:
        stop(process)
    assert "Traceback" not in farm.log_text(), farm.log_text()
