"""What the CLI tests share: a real coordinator per test module, started with
`python -m coordinator serve`, and `run`, which calls the CLI's main() in
process against it and captures what it printed."""

from __future__ import annotations

import subprocess
import sys
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from coordinator.cli import main as cli
from coordinator.client.http import FarmClient
from tests.support.coordinator_process import (
    REPO,
    CoordinatorProcess,
    coordinator_fixture,
    environment,
)

TOKEN = "cli-test-token-strong"

farm = coordinator_fixture(TOKEN)  # one coordinator per test module


@dataclass(frozen=True)
class Result:
    code: int  # the exit code
    out: str  # stdout
    err: str  # stderr


Run = Callable[..., Result]


def connect_args(farm: CoordinatorProcess) -> list[str]:
    return ["--coordinator", farm.url, "--token", farm.token]


@pytest.fixture(autouse=True)
def _no_farm_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """The developer's own FARM_COORDINATOR or FARM_TOKEN must not steer the CLI."""
    monkeypatch.delenv("FARM_COORDINATOR", raising=False)
    monkeypatch.delenv("FARM_TOKEN", raising=False)


@pytest.fixture
def run(capsys: pytest.CaptureFixture[str], farm: CoordinatorProcess) -> Run:
    """main() in-process against the test farm; `connect=False` leaves the address out."""

    def run_cli(*argv: str, connect: bool = True) -> Result:
        code = cli.main([*(connect_args(farm) if connect else []), *argv])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run_cli


@pytest.fixture
def api(farm: CoordinatorProcess) -> Iterator[FarmClient]:
    client = farm.client()
    yield client
    client.session.close()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def submit_sleep(run: Run, name: str, *extra: str) -> int:
    result = run("submit", "--type", "sleep", "--name", name, "--set", "seconds=0", *extra)
    assert result.code == 0, result.err
    return int(result.out.splitlines()[0])


def run_process(
    *argv: str, stdin: str | None = None, timeout: float = 30, env: dict[str, str] | None = None
) -> Result:
    """`python -m coordinator ARGV` as a real process, as a script would run it:
    no terminal; stdin is /dev/null, or a pipe carrying `stdin`; `env` is added
    to an environment without the developer's FARM_* settings."""
    proc = subprocess.run(
        [sys.executable, "-m", "coordinator", *argv],
        cwd=REPO,
        env={**environment(), **(env or {})},
        input=stdin,
        stdin=subprocess.DEVNULL if stdin is None else None,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    return Result(proc.returncode, proc.stdout, proc.stderr)
