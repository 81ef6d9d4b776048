"""The coordinator's start-up banner: its worker command, pasted as printed,
gives the worker the farm token, in a POSIX shell and in PowerShell."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from coordinator.server.serve import banner

URL = "https://192.168.1.20:8765"


def worker_lines(token: str) -> list[str]:
    text = banner(URL, token, Path("/data"), new_token=False, zeroconf=True, fingerprint="AB:CD")
    lines = text.splitlines()
    start = lines.index(
        "Add a render machine with (the token by environment: a command line shows in ps):"
    )
    return lines[start + 1 : start + 4]


def test_the_banner_prints_the_worker_command_for_posix_shells_and_powershell() -> None:
    assert worker_lines("5qf0token-_abcdef") == [
        f"  FARM_TOKEN=5qf0token-_abcdef lanfarm-worker --coordinator {URL}",
        "or, on Windows (PowerShell):",
        f"  $env:FARM_TOKEN='5qf0token-_abcdef'; lanfarm-worker --coordinator {URL}",
    ]


def test_a_token_with_shell_characters_is_quoted_for_each_shell() -> None:
    token = "it's$HOME`x;y"  # a token a person chose may hold any printable ASCII
    posix, _, powershell = worker_lines(token)
    said = subprocess.run(
        ["sh", "-c", posix.replace("lanfarm-worker --coordinator " + URL, "printenv FARM_TOKEN")],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert said.stdout == token + "\n"
    assert powershell == f"  $env:FARM_TOKEN='it''s$HOME`x;y'; lanfarm-worker --coordinator {URL}"


@pytest.mark.skipif(shutil.which("pwsh") is None, reason="PowerShell is not installed here")
def test_powershell_reads_the_token_as_printed() -> None:
    token = "it's$HOME`x;y"
    line = worker_lines(token)[2].replace(
        "lanfarm-worker --coordinator " + URL, "[Console]::Write($env:FARM_TOKEN)"
    )
    said = subprocess.run(
        ["pwsh", "-NoProfile", "-Command", line], capture_output=True, text=True, check=True
    )
    assert said.stdout == token
