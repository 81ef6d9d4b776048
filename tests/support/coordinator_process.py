"""A real coordinator process for tests: `python -m coordinator serve` on
loopback, waited for until it answers, stopped afterwards.

One place for what the CLI, dashboard and restart tests each did by hand;
`LocalFarm` waits for its coordinator with the same `wait_until_healthy`.
`coordinator_process()` is the context manager (start it twice on one data
folder to test a restart); `coordinator_fixture()` makes a pytest fixture of
it, one coordinator per test module unless told another scope.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.network import free_port
from tests.support.waiting import wait_for

REPO = Path(__file__).resolve().parents[2]
START_TIMEOUT = 20.0  # seconds for a coordinator to answer /health; its first start makes a DB
STOP_TIMEOUT = 10.0  # seconds it gets to shut down cleanly before it is killed

Scope = Literal["session", "package", "module", "class", "function"]


@dataclass(frozen=True)
class CoordinatorProcess:
    url: str  # its base address, http://127.0.0.1:PORT (the API is under /api/v1)
    token: str  # the farm token it was started with
    data_dir: Path  # its --data-dir
    log: Path  # its stdout and stderr together
    process: subprocess.Popen[bytes]  # for tests that kill it

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def client(self) -> FarmClient:
        """A client with the farm token; the caller closes its session."""
        return FarmClient(self.url, token=self.token)


def environment() -> dict[str, str]:
    """This environment without FARM_* settings (a developer's own FARM_TOKEN must
    not leak into the farm under test), importing this checkout."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FARM_")}
    env["PYTHONPATH"] = str(REPO)
    return env


def serve_command(port: int, data_dir: Path, args: Sequence[str]) -> list[str]:
    """The coordinator's argv; its token goes in FARM_TOKEN, never on a command line."""
    command = [sys.executable, "-m", "coordinator", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir)]
    return [*command, "--no-zeroconf", *args]


@contextmanager
def coordinator_process(
    data_dir: Path,
    *,
    token: str,
    args: Sequence[str] = (),
    check_log: bool = True,
) -> Iterator[CoordinatorProcess]:
    """A coordinator serving `data_dir` until the block ends.

    `args` go after the standard options (e.g. "--lease-seconds", "2"). With
    `check_log`, a traceback in its log fails the test when the block ends:
    a coordinator must never crash on what a test sends it.
    """
    port = free_port()
    log = data_dir.parent / f"{data_dir.name}-{port}.log"
    with log.open("wb") as out:  # a file, not a pipe nobody reads, which could fill
        process = subprocess.Popen(
            serve_command(port, data_dir, args),
            cwd=REPO,
            env={**environment(), "FARM_TOKEN": token},
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    scheme = "https" if "--tls" in args else "http"
    running = CoordinatorProcess(f"{scheme}://127.0.0.1:{port}", token, data_dir, log, process)
    try:
        wait_until_healthy(running)
        yield running
    finally:
        stop(process)
    if check_log:
        assert "Traceback" not in running.log_text(), running.log_text()


def wait_until_healthy(running: CoordinatorProcess, timeout: float = START_TIMEOUT) -> None:
    """Return once /health answers; fail with the coordinator's log if it exits
    or stays silent."""
    client = FarmClient(running.url, timeout=1)
    try:
        wait_for(lambda: answers(client, running.process), timeout, f"{running.url} to answer")
    except AssertionError as ex:
        raise AssertionError(f"{ex}; the coordinator's log:\n{running.log_text()}") from None
    finally:
        client.session.close()


def answers(client: FarmClient, process: subprocess.Popen[bytes]) -> bool:
    if process.poll() is not None:
        raise AssertionError(f"the coordinator exited with {process.returncode}")
    try:
        client.health()
    except FarmClientError:
        return False
    return True


def stop(process: subprocess.Popen[bytes]) -> None:
    """Ask it to stop (SIGTERM, a clean shutdown), kill it if it will not."""
    if process.poll() is None:
        process.terminate()
    try:
        process.wait(STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def coordinator_fixture(
    token: str, *, args: Sequence[str] = (), scope: Scope = "module"
) -> Callable[..., Iterator[CoordinatorProcess]]:
    """A fixture starting one coordinator per `scope`; name it by assigning it:
    `farm = coordinator_fixture(TOKEN)` in a test module or conftest.py."""

    @pytest.fixture(scope=scope)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CoordinatorProcess]:
        data_dir = tmp_path_factory.mktemp("coordinator")
        with coordinator_process(data_dir, token=token, args=args) as running:
            yield running

    return fixture
