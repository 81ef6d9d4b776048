"""A farm on this computer that outlives Blender. No `bpy` here.

"Start a farm on this computer" runs the bundled coordinator (and optionally
a worker) with Blender's own Python as detached processes: a new session on
POSIX, a detached process group on Windows, output to log files and a pid
file in the farm's data folder. So the farm keeps rendering after Blender
closes, and Stop works from a later Blender session, which finds the
processes through the pid files.

Data folder layout:
    coordinator/            the coordinator's --data-dir (database, files, token.txt)
    worker/                 the local worker's cache
    coordinator.pid/.log    worker.pid/.log
    farm.json               url and port of the running coordinator
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from coordinator.client.http import FarmClient, FarmClientError
from coordinator.core import network
from coordinator.core.datadirs import local_farm_data_dir, make_private_dir

DEFAULT_PORT = 8765
PORT_SEARCH = 50
COORDINATOR, WORKER = "coordinator", "worker"
# What must be in a process's command line before Stop signals it: a stale pid
# file must never make us kill an unrelated process that reused the pid.
_MARKERS = {COORDINATOR: "coordinator", WORKER: "worker_agent"}


# The farm processes this process started and that may still run: kept so that
# they are reaped when they end, rather than left as zombies.
_children: dict[int, subprocess.Popen[bytes]] = {}
PORT_ATTEMPTS = 3  # ports tried when the one found free is taken before it is bound


class LocalFarmError(Exception):
    """Starting or stopping failed; the message is for the artist."""


@dataclass(frozen=True)
class FarmState:
    url: str  # how this computer reaches it, http://127.0.0.1:PORT
    token: str  # the farm token (token.txt of the data dir)
    coordinator_pid: int | None  # None when not running
    worker_pid: int | None  # None when no local worker runs

    @property
    def running(self) -> bool:
        return self.coordinator_pid is not None


def default_data_dir() -> Path:
    """Where "Start a farm on this computer" keeps its data unless the preferences say."""
    return local_farm_data_dir()


def child_env(pythonpath: Sequence[str]) -> dict[str, str]:
    """The environment of a farm process: Blender's module paths, so the bundled
    coordinator and its wheels import, and unbuffered logs."""
    env = dict(os.environ)
    env.pop("FARM_TOKEN", None)  # another farm's token, from the artist's shell
    env["PYTHONPATH"] = os.pathsep.join(p for p in pythonpath if p and os.path.isdir(p))
    env["PYTHONUNBUFFERED"] = "1"
    return env


def free_port(host: str = "127.0.0.1", start: int = DEFAULT_PORT) -> int:
    try:
        return network.free_port(host, start=start, count=PORT_SEARCH)
    except network.NoFreePort as ex:
        raise LocalFarmError(str(ex)) from ex


def _spawn(root: Path, which: str, argv: Sequence[str], env: dict[str, str]) -> int:
    make_private_dir(root)  # the farm's database, files, token and logs: this user's only
    log_path = root / f"{which}.log"
    kwargs: dict[str, object] = {}
    if sys.platform == "win32":
        flags = subprocess.DETACHED_PROCESS | subprocess.CREATE_NEW_PROCESS_GROUP  # type: ignore[attr-defined,unused-ignore]
        kwargs["creationflags"] = flags | subprocess.CREATE_NO_WINDOW  # type: ignore[attr-defined,unused-ignore]
    else:
        kwargs["start_new_session"] = True  # no SIGHUP/SIGINT from Blender's terminal
    with log_path.open("ab") as out:
        proc = subprocess.Popen(
            list(argv),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=str(root),
            close_fds=True,
            **kwargs,  # type: ignore[call-overload]
        )
    (root / f"{which}.pid").write_text(str(proc.pid), encoding="utf-8")
    _children[proc.pid] = proc
    return proc.pid


def start_coordinator(
    root: Path,
    *,
    python: str,
    pythonpath: Sequence[str],
    name: str,
    lan: bool = True,
    port: int | None = None,
    zeroconf_interfaces: Sequence[str] | None = None,
    timeout: float = 30.0,
) -> FarmState:
    """Start the coordinator (unless one already runs from this folder) and wait for it.

    lan=False listens on 127.0.0.1 only and advertises on loopback only: for
    when Blender's "Allow Online Access" is off.
    """
    state = status(root)
    if state.running:
        return state
    host = "0.0.0.0" if lan else "127.0.0.1"
    interfaces = list(zeroconf_interfaces or ([] if lan else ["127.0.0.1"]))
    # A port found free here can be taken by another program before the
    # coordinator (a second or so later) binds it: then a later port is tried,
    # never one tried already. Free means free on the address it will bind: a
    # port another program holds on a LAN address only is free on 127.0.0.1.
    chosen = DEFAULT_PORT - 1
    for attempt in range(1 if port else PORT_ATTEMPTS):
        chosen = port or free_port(host, start=chosen + 1)
        argv = [python, "-m", "coordinator", "serve", "--host", host, "--port", str(chosen)]
        # TLS on loopback too: found by the add-ons of this machine, it can prove itself.
        argv += ["--data-dir", str(root / COORDINATOR), "--name", name, "--tls"]
        for ip in interfaces:
            argv += ["--zeroconf-interface", ip]
        log_start = _log_size(root)
        pid = _spawn(root, COORDINATOR, argv, child_env(pythonpath))
        url = f"https://127.0.0.1:{chosen}"
        (root / "farm.json").write_text(json.dumps({"url": url, "port": chosen}), encoding="utf-8")
        try:
            _wait_healthy(root, url, pid, timeout)
        except LocalFarmError:
            taken = f"--port {chosen} is taken" in _log_tail(root, since=log_start)
            if not taken or port or attempt == PORT_ATTEMPTS - 1:
                raise
            continue
        break
    return status(root)


def _wait_healthy(root: Path, url: str, pid: int, timeout: float) -> None:
    client = FarmClient(url, timeout=2.0)
    deadline = time.monotonic() + timeout
    while True:
        with contextlib.suppress(FarmClientError):
            client.health()
            if (root / COORDINATOR / "token.txt").is_file():
                return
        if not _alive(pid):
            raise LocalFarmError(f"the farm coordinator stopped at start:\n{_log_tail(root)}")
        if time.monotonic() > deadline:
            raise LocalFarmError(f"the farm coordinator did not answer within {timeout:g} s")
        time.sleep(0.1)


def start_worker(
    root: Path,
    *,
    python: str,
    pythonpath: Sequence[str],
    url: str,
    token: str,
    name: str,
    blender: str = "",
    bpy_python: str = "",
) -> int:
    """Start a worker that renders with this Blender (binary, or a Python with bpy)."""
    pid = _pid(root, WORKER)
    if pid is not None:
        return pid
    argv = [python, "-m", "worker_agent", "--coordinator", url]
    argv += ["--name", name, "--cache-dir", str(root / WORKER)]
    argv += ["--bpy-python", bpy_python] if bpy_python else ["--blender", blender]
    # The token goes by environment, which only this user can read (a command
    # line is visible to every local user in `ps`).
    env = child_env(pythonpath)
    env["FARM_TOKEN"] = token
    return _spawn(root, WORKER, argv, env)


def stop(root: Path, which: str, *, timeout: float = 15.0) -> bool:
    """Stop one of the farm's processes; False when it was not running.

    A worker gets two signals: it hands its task back to the farm at once
    rather than finishing it, because the artist asked for it to stop.
    """
    pid = _pid(root, which)
    if pid is None:
        return False
    for _ in range(2 if which == WORKER else 1):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
        time.sleep(0.05)
    deadline = time.monotonic() + timeout
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(pid):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))
    (root / f"{which}.pid").unlink(missing_ok=True)
    return True


def status(root: Path) -> FarmState:
    """What runs from this data folder now, found through the pid files."""
    url = ""
    with contextlib.suppress(OSError, ValueError):
        url = json.loads((root / "farm.json").read_text(encoding="utf-8"))["url"]
    token = ""
    with contextlib.suppress(OSError):
        token = (root / COORDINATOR / "token.txt").read_text(encoding="utf-8").strip()
    return FarmState(url, token, _pid(root, COORDINATOR), _pid(root, WORKER))


def worker_command(url: str, token: str, *, windows: bool = sys.platform == "win32") -> str:
    """What to paste on another machine to add it to this farm: Blender alone does
    (the extension registers `farm_worker`; docs/admin.md has the line for 3.x).
    That machine is usually of this one's kind: PowerShell's form on Windows,
    a POSIX shell's elsewhere. The token goes by environment (a command line
    shows in `ps`), quoted so that the shell takes none of it for its own."""
    run = f"blender -b -c farm_worker --coordinator {url}"
    if windows:  # single quotes: PowerShell expands $ and ` inside double ones
        quoted = "'" + token.replace("'", "''") + "'"
        return f"$env:FARM_TOKEN={quoted}; {run}"
    return f"FARM_TOKEN={shlex.quote(token)} {run}"


def lan_url(url: str) -> str:
    """The coordinator's URL as other machines reach it: this computer's name."""
    scheme, port = url.split(":", 1)[0], url.rsplit(":", 1)[-1]
    return f"{scheme}://{socket.gethostname()}:{port}"


def _pid(root: Path, which: str) -> int | None:
    """The pid in the pid file if that process still runs and is ours."""
    try:
        pid = int((root / f"{which}.pid").read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None
    if not _alive(pid) or not _is_ours(pid, _MARKERS[which]):
        return None
    return pid


def _alive(pid: int) -> bool:
    child = _children.get(pid)
    if child is not None:  # started by this process: ask it (and reap it once ended)
        if child.poll() is None:
            return True
        _children.pop(pid, None)  # another thread may have reaped it first
        return False
    if sys.platform == "win32":
        return _alive_windows(pid)
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # reap it if it was our own child
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def _alive_windows(pid: int) -> bool:
    out = subprocess.run(
        ["tasklist", "/FI", f"PID eq {pid}", "/NH"], capture_output=True, text=True, check=False
    )
    return str(pid) in out.stdout


def _is_ours(pid: int, marker: str) -> bool:
    """Linux can tell from /proc; elsewhere the pid file is trusted while it runs."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return sys.platform != "linux"
    return marker.encode() in cmdline


def _log_tail(root: Path, since: int = 0) -> str:
    try:
        with (root / f"{COORDINATOR}.log").open("rb") as f:
            f.seek(since)
            return f.read().decode("utf-8", "replace")[-1500:]
    except OSError:
        return "(no log)"


def _log_size(root: Path) -> int:
    try:
        return (root / f"{COORDINATOR}.log").stat().st_size
    except OSError:
        return 0
