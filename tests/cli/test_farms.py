"""Choosing a farm when several answer: real coordinators advertised by
zeroconf on 127.0.0.1 only (every Zeroconf here, the CLI's included, is given
--zeroconf-interface 127.0.0.1, so nothing is multicast on a real network).
Names are unique per test, since other test runs on this machine advertise
on 127.0.0.1 too; the asserts look only for this test's farms."""

from __future__ import annotations

import json
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from coordinator.cli import common
from coordinator.core.network import free_port
from tests.cli.conftest import run_process
from tests.support.coordinator_process import (
    REPO,
    CoordinatorProcess,
    environment,
    stop,
    wait_until_healthy,
)

TOKEN = "farms-test-token-strong"
LO = ("--zeroconf-interface", "127.0.0.1")

pytestmark = pytest.mark.timeout(120)


@contextmanager
def advertised_farm(root: Path, name: str) -> Iterator[CoordinatorProcess]:
    """`lanfarm serve --name NAME --tls` announcing itself on 127.0.0.1 only (a farm
    found on the LAN must prove itself, which it can only do over TLS)."""
    port = free_port()
    data_dir = root / name
    log = root / f"{name}.log"
    command = [sys.executable, "-m", "coordinator", "serve", "--host", "127.0.0.1"]
    command += ["--port", str(port), "--data-dir", str(data_dir), "--token", TOKEN, "--tls"]
    with log.open("wb") as out:
        process = subprocess.Popen(
            [*command, "--name", name, *LO],
            cwd=REPO,
            env=environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    farm = CoordinatorProcess(f"https://127.0.0.1:{port}", TOKEN, data_dir, log, process)
    try:
        wait_until_healthy(farm)
        yield farm
    finally:
        stop(process)


@pytest.fixture(scope="module")
def two_farms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[CoordinatorProcess]]:
    root = tmp_path_factory.mktemp("farms")
    tag = uuid.uuid4().hex[:6]
    with ExitStack() as stack:
        yield [stack.enter_context(advertised_farm(root, f"{n}-{tag}")) for n in ("blue", "red")]


def name_of(farm: CoordinatorProcess) -> str:
    return farm.data_dir.name


def test_farms_lists_what_answers(two_farms: list[CoordinatorProcess]) -> None:
    result = run_process("farms", *LO, "--json")
    assert result.code == 0, result.err
    found = {f["name"]: f for f in json.loads(result.out)}
    for farm in two_farms:
        seen = found[name_of(farm)]
        assert (seen["url"], seen["api_version"], seen["workers"]) == (farm.url, "1", 0)
        assert seen["compatible"] is True
    table = run_process("farms", *LO)
    assert table.out.splitlines()[0].split() == ["NAME", "ADDRESS", "API", "WORKERS"]
    assert all(f"{name_of(f)}  " in table.out and f.url in table.out for f in two_farms)
    assert "choose one with --farm-name NAME" in table.err


def test_several_farms_are_never_a_silent_guess(two_farms: list[CoordinatorProcess]) -> None:
    result = run_process(*LO, "--token", TOKEN, "jobs")
    assert result.code == 2, result
    assert "farms answered on the LAN and know this token: " in result.err
    for farm in two_farms:
        assert f"'{name_of(farm)}' at {farm.url}" in result.err
    assert result.err.rstrip().endswith(
        "choose one with --farm-name NAME (or FARM_NAME) or --coordinator URL"
    )


def test_farm_name_chooses_one(two_farms: list[CoordinatorProcess]) -> None:
    blue, red = two_farms
    result = run_process(*LO, "--farm-name", name_of(red), "--token", TOKEN, "jobs", "--json")
    assert result.code == 0, result.err
    assert f"using coordinator '{name_of(red)}' at {red.url} (found on the LAN; it proved" in (
        result.err
    )
    result = run_process(*LO, "--token", TOKEN, "jobs", env={"FARM_NAME": name_of(blue)})
    assert result.code == 0, result.err
    assert f"using coordinator '{name_of(blue)}' at {blue.url}" in result.err
    missing = run_process(*LO, "--farm-name", "no-such-farm", "--token", TOKEN, "jobs")
    assert missing.code == 3
    assert "no farm named 'no-such-farm' answered on the LAN" in missing.err
    assert "`lanfarm farms` lists those that do" in missing.err


@pytest.mark.parametrize(
    ("given", "url"),
    [
        ("render-boss", "http://render-boss:8765"),
        ("render-boss:9000", "http://render-boss:9000"),
        ("http://render-boss", "http://render-boss:8765"),
        ("http://render-boss:80", "http://render-boss:80"),
        ("https://farm.example/", "https://farm.example:8765/"),
        ("[fe80::1]", "http://[fe80::1]:8765"),
        ("192.168.1.20", "http://192.168.1.20:8765"),
    ],
)
def test_an_address_without_a_port_means_the_farm_port(given: str, url: str) -> None:
    assert common.with_farm_port(given) == url


def test_a_bad_port_in_the_address() -> None:
    result = run_process("--coordinator", "render-boss:99999", "--token", TOKEN, "jobs")
    assert result.code == 2 and "bad coordinator address" in result.err, result


def test_farms_with_a_token_says_which_prove_it(two_farms: list[CoordinatorProcess]) -> None:
    result = run_process("farms", *LO, "--token", TOKEN)
    assert result.code == 0, result.err
    assert result.out.splitlines()[0].split() == ["NAME", "ADDRESS", "API", "WORKERS", "TOKEN"]
    for farm in two_farms:
        (line,) = [row for row in result.out.splitlines() if farm.url in row]
        assert line.rstrip().endswith("proved")
    wrong = run_process("farms", *LO, "--json", env={"FARM_TOKEN": "another-farms-token-0123"})
    found = {f["name"]: f for f in json.loads(wrong.out)}
    for farm in two_farms:
        assert found[name_of(farm)]["proves_token"] is False
        assert found[name_of(farm)]["tls"] is True
