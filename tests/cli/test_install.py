"""The installed commands: a wheel built from this checkout, installed into a
fresh virtual environment, gives `lanfarm` and `lanfarm-worker` that work from
any folder, with the dashboard's files inside; its coordinator serves (no
Blender needed) and takes a job. No network: the wheel's build
environment comes from the file indexes pip is configured with, when it has
some, and the dependencies from the project's own .venv (a .pth file), so
what is checked is the wheel itself: its packages, data and entry points."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core.network import free_port
from tests.support.coordinator_process import REPO
from tests.support.waiting import wait_for

PACKAGES = ("coordinator", "worker_agent", "flamenco_addon")
pytestmark = pytest.mark.slow


def pip(*args: str, cwd: Path) -> str:
    proc = subprocess.run(
        [sys.executable, "-m", "pip", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def local_indexes(cwd: Path) -> list[str]:
    """pip options that keep the build on this machine's configured file indexes
    (none: pip's own configuration is used as it is)."""
    config = pip("config", "list", cwd=cwd)
    urls = [
        url
        for line in config.splitlines()
        if line.split("=", 1)[0].endswith("extra-index-url")
        for url in line.split("=", 1)[1].strip("'\"").split()
        if url.startswith("file://")
    ]
    if not urls:
        return []
    return ["--index-url", urls[0], *(f"--extra-index-url={u}" for u in urls[1:])]


def build_wheel(tmp_path: Path) -> Path:
    """A wheel of this working tree, built from a copy (no build/ or egg-info here)."""
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    for package in PACKAGES:
        shutil.copytree(
            REPO / package, source / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    dist = tmp_path / "dist"
    pip("wheel", "-q", "--no-deps", *local_indexes(source), "-w", str(dist), ".", cwd=source)
    (wheel,) = dist.glob("lanfarm-*.whl")
    return wheel


def install(wheel: Path, venv: Path) -> Path:
    """The wheel in a new venv (no pip in it: this pip installs into it); the
    dependencies are borrowed from the running environment."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = venv / "bin" / "python"
    pip("--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel), cwd=venv)
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    deps = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    Path(site, "_lanfarm_test_deps.pth").write_text("\n".join(sorted(deps)) + "\n")
    return venv / "bin"


def run(
    command: list[str | Path], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("FARM_")}
    return subprocess.run(
        command, cwd=cwd, env={**clean, **(env or {})}, capture_output=True, text=True, timeout=60
    )


@pytest.mark.skipif(sys.platform == "win32", reason="venv layout (bin/) of POSIX")
def test_a_wheel_installs_lanfarm_and_lanfarm_worker(tmp_path: Path) -> None:
    bin_dir = install(build_wheel(tmp_path), tmp_path / "venv")
    elsewhere = tmp_path / "elsewhere"  # not the checkout: nothing imported from there
    elsewhere.mkdir()
    result = run([bin_dir / "lanfarm", "--help"], elsewhere)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage: lanfarm ")
    for command in ("serve", "submit", "jobs", "wait", "farms", "delete"):
        assert command in result.stdout
    result = run([bin_dir / "lanfarm", "serve", "--help"], elsewhere)
    assert result.returncode == 0 and "--data-dir" in result.stdout, result.stderr
    result = run([bin_dir / "lanfarm-worker", "--help"], elsewhere)
    assert result.returncode == 0 and "--farm-name" in result.stdout, result.stderr
    where = run(
        [
            bin_dir / "python",
            "-c",
            "import coordinator.server, pathlib; p = pathlib.Path(coordinator.server.__file__);"
            " print(p.parent); print((p.parent / 'dashboard' / 'index.html').is_file())",
        ],
        elsewhere,
    )
    folder, dashboard = where.stdout.split()
    assert Path(folder).is_relative_to(tmp_path / "venv"), folder
    assert dashboard == "True"
    # The installed coordinator serves from any folder: API and dashboard
    port = free_port()
    data = tmp_path / "farm-data"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH" and not k.startswith("FARM_")}
    serve: list[str | Path] = [bin_dir / "lanfarm", "serve", "--host", "127.0.0.1"]
    serve += ["--port", str(port)]
    serve += ["--data-dir", str(data), "--no-zeroconf"]
    with (tmp_path / "serve.log").open("wb") as log:
        server = subprocess.Popen(serve, cwd=elsewhere, env=env, stdout=log, stderr=log)
    try:
        url = f"http://127.0.0.1:{port}"
        token = wait_for_token(data / "token.txt", server)
        client = FarmClient(url, token=token)
        wait_for(lambda: _healthy(client), timeout=30, what="the installed coordinator")
        page = client.session.get(f"{url}/", timeout=10)
        assert page.status_code == 200 and "<html" in page.text.lower()
        submitted = run(
            [bin_dir / "lanfarm", "--coordinator", url, "submit", "--type", "sleep", "--json"],
            elsewhere,
            env={"FARM_TOKEN": token},
        )
        assert submitted.returncode == 0, submitted.stderr
        assert client.jobs()["total"] == 1
    finally:
        server.terminate()
        server.wait(timeout=30)
    assert "Traceback" not in (tmp_path / "serve.log").read_text()


def wait_for_token(path: Path, server: subprocess.Popen[bytes]) -> str:
    wait_for(lambda: path.is_file() or server.poll() is not None, timeout=30, what="token.txt")
    assert server.poll() is None, "the installed coordinator stopped at start"
    return path.read_text().strip()


def _healthy(client: FarmClient) -> bool:
    try:
        return bool(client.health())
    except FarmClientError:
        return False
