"""`serve` refuses what cannot work, with one line naming the option or file
and no traceback, before anything listens: each case runs the real command.
Its data folder is locked while it runs (a second coordinator is refused,
naming the first), and the lock goes with the process, even after kill -9."""

from __future__ import annotations

import os
import re
import socket
import stat
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient
from coordinator.core.network import free_port
from tests.cli.conftest import Result, run_process
from tests.support.coordinator_process import coordinator_process

TOKEN = "serve-test-token-strong"


def serve(data_dir: Path, *args: str, env: dict[str, str] | None = None) -> Result:
    """`serve` on loopback that is expected to refuse, so it ends by itself."""
    result = run_process(
        *("serve", "--host", "127.0.0.1", "--data-dir", str(data_dir), "--no-zeroconf"),
        *args,
        timeout=20,
        env=env,
    )
    assert "Traceback" not in result.err, result.err
    return result


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--port", "70000"), "error: --port 70000 is not a port; give 1-65535"),
        (("--port", "0"), "error: --port 0 is not a port; give 1-65535"),
        (("--lease-seconds", "0"), "error: --lease-seconds 0 is out of range; give 1 to 86400"),
        (("--lease-seconds", "-5"), "error: --lease-seconds -5 is out of range"),
        (("--lease-seconds", "nan"), "error: --lease-seconds nan is out of range"),
        (("--token", "a"), "error: the farm token (--token) is too short (1 of at least 16"),
        (("--token", "abababababababab"), "error: the farm token (--token) is too simple"),
        (("--token", "has a space in it"), "error: the farm token (--token) contains spaces"),
        (
            ("--zeroconf-interface", "notanip"),
            "error: --zeroconf-interface 'notanip' is not an IP address",
        ),
        (
            ("--zeroconf-interface", "192.0.2.55"),  # TEST-NET-1: no machine has it
            "error: --zeroconf-interface 192.0.2.55 is not an address of this machine",
        ),
        (("--host", "192.0.2.55"), "error: --host 192.0.2.55 is not an address of this machine"),
    ],
)
def test_bad_options_are_refused(tmp_path: Path, args: tuple[str, ...], message: str) -> None:
    data_dir = tmp_path / "data"
    result = serve(data_dir, *("--token", TOKEN)[: 0 if "--token" in args else 2], *args)
    assert result.code == 2, result
    assert result.err.count("\n") == 1 and result.err.startswith(message), result.err
    assert not (data_dir / "farm.sqlite3").exists()  # refused before anything was made
    assert not (data_dir / "token.txt").exists()


def test_a_data_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "afile").write_text("x")
    result = serve(tmp_path / "afile", "--token", TOKEN)
    assert result.code == 2
    assert (
        result.err == f"error: --data-dir {tmp_path / 'afile'} is a file, not a folder;"
        " give a folder\n"
    )


def test_a_weak_farm_token_from_the_environment(tmp_path: Path) -> None:
    result = serve(tmp_path / "data", env={"FARM_TOKEN": "short"})
    assert result.code == 2
    assert result.err.startswith("error: the farm token (FARM_TOKEN) is too short (5 of")
    assert "leave it out for a new random one" in result.err


def test_a_taken_port_says_so(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = serve(tmp_path / "data", "--token", TOKEN, "--port", str(port))
    assert result.code == 2
    assert result.err.startswith(f"error: --port {port} is taken: another program listens there")
    assert not (tmp_path / "data" / "farm.sqlite3").exists()


def test_the_banner_names_the_real_port_and_no_zeroconf_when_off(tmp_path: Path) -> None:
    with coordinator_process(tmp_path / "data", token=TOKEN) as farm:
        port = int(farm.url.rsplit(":", 1)[1])
        banner = farm.log_text()
        assert f"Farm coordinator running at http://127.0.0.1:{port}\n" in banner
        client = FarmClient(farm.url)
        assert client.health()
        client.session.close()
        assert "zeroconf" not in banner  # --no-zeroconf: nobody is told to look for it
        assert re.search(r"farm token: serve-test-token-strong\n", banner)


def test_the_data_folder_database_and_token_are_private_from_the_start(tmp_path: Path) -> None:
    old = os.umask(0o022)  # the usual umask: anything not made private would be readable
    try:
        with coordinator_process(tmp_path / "data", token=TOKEN) as farm:
            FarmClient(farm.url, token=TOKEN).jobs()
            data = farm.data_dir
            modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in data.iterdir()}
            assert stat.S_IMODE(data.stat().st_mode) == 0o700
            assert modes["farm.sqlite3"] == 0o600
            assert all(m & 0o077 == 0 for name, m in modes.items() if name.startswith("farm."))
            assert TOKEN.encode() not in Path(f"/proc/{farm.process.pid}/cmdline").read_bytes()
    finally:
        os.umask(old)


def test_a_second_coordinator_on_the_same_data_dir_is_refused(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with coordinator_process(data_dir, token=TOKEN) as first:
        pid = first.process.pid
        result = serve(data_dir, "--token", TOKEN, "--port", str(free_port()))
        assert result.code == 2
        assert result.err == (
            f"error: --data-dir {data_dir} is being served already by the coordinator at"
            f" {first.url} (process {pid}); stop that coordinator first, or give another"
            " --data-dir\n"
        )
    # stopped cleanly: the folder is free again
    with coordinator_process(data_dir, token=TOKEN) as second:
        second.process.kill()  # a crash leaves coordinator.lock behind, but no lock
        second.process.wait()
    assert (data_dir / "coordinator.lock").exists()
    with coordinator_process(data_dir, token=TOKEN) as third:
        assert FarmClient(third.url, token=TOKEN).jobs()["total"] == 0


def test_the_open_file_limit_is_raised_to_the_hard_one(tmp_path: Path) -> None:
    # Each connection is a file: with the usual soft limit (1024, here 256) a
    # crowd of sockets would meet the OS limit before the per-address cap.
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard <= 256:
        pytest.skip(f"this machine's hard open-file limit is {hard}: nothing to raise")
    resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))  # inherited by the coordinator
    try:
        with coordinator_process(tmp_path / "data", token=TOKEN) as farm:
            limits = Path(f"/proc/{farm.process.pid}/limits").read_text()
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    (line,) = [row for row in limits.splitlines() if row.startswith("Max open files")]
    got_soft, got_hard = line.split()[3:5]
    assert got_soft == got_hard != "256", line
