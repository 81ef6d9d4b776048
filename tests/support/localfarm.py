"""A farm on this machine: a coordinator and workers as child processes.

Used by `make demo`, the end-to-end tests and the benchmarks. Each process is
a real `python -m coordinator serve` or `python -m worker_agent`, so what runs
here is what runs on a LAN.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Literal

import pytest

from coordinator.client.http import FarmClient
from coordinator.core import trust
from coordinator.core.network import free_port
from tests.support.coordinator_process import CoordinatorProcess, wait_until_healthy

REPO_ROOT = Path(__file__).resolve().parents[2]
Scope = Literal["session", "package", "module", "class", "function"]


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    env.setdefault("PYTHONUNBUFFERED", "1")
    return env


@dataclass
class Child:
    name: str  # for messages
    process: subprocess.Popen[bytes]  # the running child
    log_path: Path  # its stdout+stderr

    def stop(self, *, timeout: float = 15.0) -> int | None:
        """SIGTERM (twice for workers: finish, then hand back), SIGKILL if ignored."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.process.send_signal(signal.SIGTERM)
                time.sleep(0.05)
                self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode

    def kill(self) -> None:
        """kill -9, as a crash would."""
        with contextlib.suppress(ProcessLookupError):
            self.process.kill()
        self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")


@dataclass
class LocalFarm:
    root: Path  # data dir of the coordinator, caches of the workers, logs
    # The farm token: random, as `serve` makes one, and passed to the children in
    # FARM_TOKEN, never on a command line (which every local user can read in ps).
    token: str = field(default_factory=trust.new_farm_token)
    host: str = "127.0.0.1"  # where the coordinator listens
    port: int = 0  # 0: a free port
    lease_seconds: float = 10.0  # short enough for tests to see requeues
    tls: bool = False  # serve --tls: https, as a farm on a LAN serves (loopback defaults to http)
    coordinator: Child | None = None
    workers: list[Child] = field(default_factory=list)
    _logs: list[IO[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def client(self) -> FarmClient:
        return FarmClient(self.url, token=self.token)

    def _spawn(self, name: str, argv: Sequence[str]) -> Child:
        self.root.mkdir(parents=True, exist_ok=True)
        log_path = self.root / f"{name}.log"
        out = log_path.open("ab")
        self._logs.append(out)
        process = subprocess.Popen(
            [sys.executable, *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**_env(), "FARM_TOKEN": self.token},
            cwd=REPO_ROOT,
        )
        return Child(name, process, log_path)

    def start_coordinator(self, *extra: str, timeout: float = 30.0) -> Child:
        if not self.port:
            self.port = free_port(self.host)
        if "--no-zeroconf" not in extra and not any(
            a.startswith("--zeroconf-interface") for a in extra
        ):
            # Announce the farm where it listens: a loopback farm never
            # multicasts on a real network.
            extra = ("--zeroconf-interface", self.host, *extra)
        self.coordinator = self._spawn(
            "coordinator",
            [
                "-m",
                "coordinator",
                "serve",
                "--host",
                self.host,
                "--port",
                str(self.port),
                "--data-dir",
                str(self.root / "coordinator"),
                "--lease-seconds",
                str(self.lease_seconds),
                *(["--tls"] if self.tls else []),
                *extra,
            ],
        )
        # One wait for every coordinator the tests start (tests/support/coordinator_process.py).
        data_dir = self.root / "coordinator"
        running = CoordinatorProcess(
            self.url, self.token, data_dir, self.coordinator.log_path, self.coordinator.process
        )
        wait_until_healthy(running, timeout)
        return self.coordinator

    def start_worker(
        self,
        name: str,
        *extra: str,
        blender: str | None = None,
        bpy_python: str | None = None,
        wait_registered: bool = True,
        discover: bool = False,
    ) -> Child:
        """A worker agent; discover=True makes it find the coordinator by zeroconf
        (on the coordinator's own address only) instead of being told its URL."""
        where = ["--zeroconf-interface", self.host] if discover else ["--coordinator", self.url]
        which = (
            ["--bpy-python", bpy_python]
            if bpy_python
            else (["--blender", blender] if blender else [])
        )
        before = len(self.client().workers()) if wait_registered else 0
        child = self._spawn(
            name,
            [
                "-m",
                "worker_agent",
                *where,
                "--name",
                name,
                "--cache-dir",
                str(self.root / name),
                "--poll-wait",
                "5",
                *which,
                *extra,
            ],
        )
        self.workers.append(child)
        if wait_registered:
            self._wait_for_workers(before + 1, child)
        return child

    def _wait_for_workers(self, count: int, child: Child, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.client().workers()) < count:
            if child.process.poll() is not None:
                raise RuntimeError(f"worker {child.name} exited:\n{child.log()[-3000:]}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker {child.name} did not register")
            time.sleep(0.1)

    def wait_for_job(
        self,
        job_id: int,
        *,
        timeout: float = 300.0,
        statuses: Sequence[str] = ("completed", "failed", "canceled"),
    ) -> dict:
        deadline = time.monotonic() + timeout
        client = self.client()
        while True:
            job = client.job(job_id, tasks=False)
            if job["status"] in statuses:
                return job
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"job {job_id} still {job['status']} after {timeout:g} s: {self.describe()}"
                )
            time.sleep(0.2)

    def describe(self) -> str:
        parts = []
        for child in [self.coordinator, *self.workers]:
            if child is not None:
                parts.append(f"--- {child.name} ---\n{child.log()[-2000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        for child in self.workers:
            child.stop()
        if self.coordinator is not None:
            self.coordinator.stop()
        for f in self._logs:
            f.close()
        self._logs.clear()

    def __enter__(self) -> LocalFarm:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def farm_fixture(
    *,
    workers: Sequence[str] = (),
    blender: str | None = None,
    bpy_python: str | None = None,
    lease_seconds: float = 10.0,
    zeroconf: bool = False,
    worker_args: Sequence[str] = (),
    scope: Scope = "module",
) -> Callable[..., Iterator[LocalFarm]]:
    """A fixture of a LocalFarm with a coordinator and the named workers, one per
    `scope`; name it by assigning it: `farm = farm_fixture(workers=("w1",), ...)`."""

    @pytest.fixture(scope=scope)
    def fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalFarm]:
        root = tmp_path_factory.mktemp("farm")
        with LocalFarm(root=root, lease_seconds=lease_seconds) as farm:
            farm.start_coordinator(*(() if zeroconf else ("--no-zeroconf",)))
            for name in workers:
                farm.start_worker(name, *worker_args, blender=blender, bpy_python=bpy_python)
            yield farm

    return fixture
