"""`python -m coordinator serve`: data dir, token, port, and the running server.

Everything a person can get wrong when starting a coordinator (a port out of
range or taken, a data folder that is a file or already served, a weak token,
an address this machine does not have) is a `ServeError` with a one-line
message naming the option, raised before anything listens.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import math
import os
import platform
import shlex
import signal
import socket
import sys
from collections.abc import Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from coordinator.core import trust
from coordinator.core.datadirs import coordinator_data_dir, make_private_dir
from coordinator.core.network import NoFreePort, free_port, parse_ip
from coordinator.core.protocol import DEFAULT_PORT
from coordinator.server.app import create_app
from coordinator.server.config import AppConfig, FarmConfig
from coordinator.server.guard import GUARD, GuardedSite
from coordinator.server.tls import load_tls

log = logging.getLogger(__name__)

PORT_SEARCH = 50  # how many ports after the default to try
SHUTDOWN_GRACE = 2.0  # seconds requests in flight get to finish when the coordinator stops
MIN_LEASE_SECONDS = 1.0  # shorter, and a worker's normal report interval would lose its task
MAX_LEASE_SECONDS = 86400.0  # longer, and a dead worker would hold its task for days
MIN_TOKEN_BITS = 96  # a token weaker than this could be guessed from the LAN
MIN_TOKEN_LENGTH = 16  # 96 bits at 6 bits per character (token_urlsafe's alphabet)
MAKE_TOKEN = "python3 -c 'import secrets; print(secrets.token_hex(24))'"
LOCK_FILE = "coordinator.lock"  # in the data folder: held while a coordinator serves it


class ServeError(Exception):
    """A coordinator cannot start as asked; the message says which option or file."""


def default_data_dir() -> Path:
    """Where a coordinator keeps its database and files unless told otherwise."""
    return coordinator_data_dir()


def token_problem(token: str) -> str | None:
    """Why a token given by a person is unfit to guard the farm, or None.

    Only --token and FARM_TOKEN are checked: a saved token.txt was accepted
    when it was written, and a farm must keep starting with it.
    """
    if len(token) < MIN_TOKEN_LENGTH:
        return f"is too short ({len(token)} of at least {MIN_TOKEN_LENGTH} characters)"
    if any(c.isspace() or not c.isprintable() or not c.isascii() for c in token):
        return "contains spaces, control or non-ASCII characters, which an HTTP header cannot carry"
    if trust.is_worker_secret(token):
        return (
            f"starts with {trust.WORKER_SECRET_PREFIX!r}, which marks a worker's secret,"
            " not a farm token"
        )
    if len(set(token)) < 4:
        return "is too simple: it has fewer than 4 different characters"
    bits = token_bits(token)
    if bits < MIN_TOKEN_BITS - 1:  # 16 letters and digits (95.3 bits) pass
        return (
            f"is too weak to resist guessing (about {bits:.0f} bits; at least"
            f" {MIN_TOKEN_BITS} are needed, e.g. 16 random letters, digits, - and _)"
        )
    return None


def token_bits(token: str) -> float:
    """An upper bound of a token's entropy: its length times the bits of each
    character drawn at random from the kinds of characters it uses."""
    alphabet = 0
    for kind, size in ((str.islower, 26), (str.isupper, 26), (str.isdigit, 10)):
        if any(kind(c) for c in token):
            alphabet += size
    symbols = {c for c in token if not c.isalnum()}
    if symbols:
        alphabet += 2 if symbols <= set("-_") else 32
    return len(token) * math.log2(max(alphabet, 2))


def load_token(data_dir: Path, explicit: str | None) -> tuple[str, bool]:
    """The farm token: --token, FARM_TOKEN, token.txt, or a new one (saved). -> (token, new)"""
    given, source = (explicit, "--token") if explicit else (os.environ.get("FARM_TOKEN"), "")
    token = given
    path = data_dir / "token.txt"
    if token:
        problem = token_problem(token)
        if problem:
            raise ServeError(
                f"the farm token ({source or 'FARM_TOKEN'}) {problem}; leave it out for a new"
                f" random one, or make one with: {MAKE_TOKEN}"
            )
        return token, False
    if path.is_file():
        saved = path.read_text(encoding="utf-8").strip()
        if saved:
            return saved, False
    token = trust.new_farm_token()
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


def pick_port(host: str, wanted: int | None) -> int:
    """The asked-for port (refused now when taken, before a database is made for
    nothing), or the first free one from the default on."""
    if wanted is not None:
        try:
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as aiohttp binds
                s.bind((host, wanted))
        except OSError as ex:
            raise ServeError(listen_problem(host, wanted, ex)) from ex
        return wanted
    try:
        return free_port(host or "0.0.0.0", start=DEFAULT_PORT, count=PORT_SEARCH)
    except NoFreePort as ex:
        raise ServeError(f"{ex}; pass --port") from ex
    except OSError as ex:
        raise ServeError(listen_problem(host, None, ex)) from ex


def listen_problem(host: str, port: int | None, ex: OSError) -> str:
    """Why the coordinator cannot listen at host:port, naming the option to change."""
    if ex.errno == errno.EADDRINUSE:
        return (
            f"--port {port} is taken: another program listens there on {host}; choose another"
            f" --port, or leave it out to take the first free one from {DEFAULT_PORT}"
        )
    if ex.errno == errno.EACCES:
        return f"--port {port} needs administrator rights here; choose one above 1023"
    if ex.errno == errno.EADDRNOTAVAIL or isinstance(ex, socket.gaierror):
        return f"--host {host} is not an address of this machine (0.0.0.0 is all of them)"
    return f"cannot serve on {host}:{port}: {ex.strerror or ex}"


def check_local_address(option: str, text: str) -> None:
    """`text` is an IP address this machine has; zeroconf and aiohttp would otherwise
    fail later with a traceback or an errno ("No such device")."""
    ip = parse_ip(text)
    if ip is None:
        raise ServeError(f"{option} {text!r} is not an IP address, e.g. 192.168.1.20")
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.bind((text, 0))
    except OSError as ex:
        raise ServeError(
            f"{option} {text} is not an address of this machine ({ex.strerror or ex});"
            " `ip addr` (Linux), `ifconfig` (macOS) or `ipconfig` (Windows) lists them"
        ) from ex


def check_options(options: ServeOptions) -> None:
    """Refuse what cannot work before anything is created or listens."""
    if options.port is not None and not 1 <= options.port <= 65535:
        raise ServeError(f"--port {options.port} is not a port; give 1-65535")
    if not MIN_LEASE_SECONDS <= options.lease_seconds <= MAX_LEASE_SECONDS:
        raise ServeError(
            f"--lease-seconds {options.lease_seconds:g} is out of range; give"
            f" {MIN_LEASE_SECONDS:g} to {MAX_LEASE_SECONDS:g} seconds (default 60)"
        )
    if parse_ip(options.host) is not None and options.host not in ("0.0.0.0", "::"):
        check_local_address("--host", options.host)  # a name is left to the resolver
    for address in options.zeroconf_interfaces or ():
        check_local_address("--zeroconf-interface", address)
    data_dir = options.data_dir
    if data_dir.exists() and not data_dir.is_dir():
        raise ServeError(f"--data-dir {data_dir} is a file, not a folder; give a folder")
    try:
        make_private_dir(data_dir)
    except OSError as ex:
        raise ServeError(f"cannot create --data-dir {data_dir}: {ex.strerror or ex}") from ex


class DataDirLock:
    """One coordinator per data folder: two would share one SQLite database and
    one file store, and each would hand out the other's tasks.

    The lock is the operating system's (flock, or msvcrt on Windows) on
    `coordinator.lock`, so it goes with the process: a crashed coordinator
    leaves the file but no lock. The file names the holder for the refusal.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._file: IO[str] | None = None

    def acquire(self) -> None:
        f = open(self.path, "a+", encoding="utf-8")  # noqa: SIM115 - held until release()
        try:
            _lock(f)
        except OSError as ex:
            f.seek(0)
            holder = f.read().strip() or "another coordinator"
            f.close()
            raise ServeError(
                f"--data-dir {self.path.parent} is being served already by {holder};"
                " stop that coordinator first, or give another --data-dir"
            ) from ex
        self._file = f

    def write_holder(self, text: str) -> None:
        """Say who holds it (this process and its address), for a second coordinator."""
        if self._file is not None:
            self._file.seek(0)
            self._file.truncate()
            self._file.write(text + "\n")
            self._file.flush()

    def release(self) -> None:
        if self._file is not None:
            with contextlib.suppress(OSError):
                self.write_holder("")
                _unlock(self._file)
            self._file.close()
            self._file = None


if sys.platform == "win32":
    import msvcrt

    _WIN_LOCK_OFFSET = 1 << 30  # a byte past the text, which stays readable to others

    def _lock(f: IO[str]) -> None:
        f.seek(_WIN_LOCK_OFFSET)
        msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)

    def _unlock(f: IO[str]) -> None:
        f.seek(_WIN_LOCK_OFFSET)
        msvcrt.locking(f.fileno(), msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(f: IO[str]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(f: IO[str]) -> None:
        fcntl.flock(f.fileno(), fcntl.LOCK_UN)


@dataclass(frozen=True)
class ServeOptions:
    host: str  # address to listen on; 0.0.0.0 for the LAN
    port: int | None  # None: 8765 or the first free port after it
    data_dir: Path  # database, files, outputs, logs, token
    token: str | None  # None: FARM_TOKEN, token.txt, or a new one
    name: str  # shown to artists and workers
    zeroconf: bool  # advertise on the LAN
    zeroconf_interfaces: list[str] | None  # None: every interface
    lease_seconds: float  # silent workers lose their task after this
    tls: bool | None = None  # None: TLS unless the host is a loopback address


def public_url(host: str, port: int, *, tls: bool = False) -> str:
    if host in ("", "0.0.0.0", "::"):
        try:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                s.connect(("10.255.255.255", 1))  # picks the LAN address; sends nothing
                host = s.getsockname()[0]
        except OSError:
            host = socket.gethostname()
    return f"{'https' if tls else 'http'}://{host}:{port}"


def banner(
    url: str,
    token: str,
    data_dir: Path,
    *,
    new_token: bool,
    zeroconf: bool,
    fingerprint: str = "",
) -> str:
    lines = [
        f"Farm coordinator running at {url}",
        f"  dashboard:  {url}/",
        f"  data:       {data_dir}",
        f"  farm token: {token}" + ("  (new; saved in token.txt)" if new_token else ""),
    ]
    if fingerprint:
        lines.append(f"  TLS certificate SHA-256: {fingerprint}")
    else:
        lines.append("  plain HTTP: this farm listens on loopback only (--tls to encrypt)")
    lines += [
        "Add a render machine with (the token by environment: a command line shows in ps):",
        f"  FARM_TOKEN={shlex.quote(token)} lanfarm-worker --coordinator {url}",
        "or, on Windows (PowerShell):",  # single quotes: it expands $ and ` in double ones
        "  $env:FARM_TOKEN='" + token.replace("'", "''") + f"'; lanfarm-worker --coordinator {url}",
    ]
    if zeroconf:
        lines.append("  (or leave out --coordinator to find this farm on the LAN by zeroconf)")
    return "\n".join(lines)


def raise_open_file_limit() -> None:
    """Every connection is a file descriptor: the soft limit (often 1024) goes up
    to the hard one, so a crowd of connections meets the per-address cap and
    the idle timeout before it meets the operating system's limit."""
    try:
        import resource
    except ImportError:  # Windows: no such limit per process
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    for wanted in (hard, 1 << 20, 10240):  # macOS refuses RLIM_INFINITY and > OPEN_MAX
        if wanted == resource.RLIM_INFINITY and hard == resource.RLIM_INFINITY:
            continue
        if soft != resource.RLIM_INFINITY and wanted <= soft:
            return
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            log.debug("open files: soft limit %d -> %d", soft, wanted)
            return
        except (ValueError, OSError):
            continue


async def run_server(options: ServeOptions) -> None:
    check_options(options)
    raise_open_file_limit()
    lock = DataDirLock(options.data_dir)
    lock.acquire()
    try:
        await serve_locked(options, lock)
    finally:
        lock.release()


def wants_tls(options: ServeOptions) -> bool:
    """TLS unless told otherwise or listening on loopback only, where nothing
    crosses a network (docs/admin.md, Security)."""
    if options.tls is not None:
        return options.tls
    return not is_loopback(options.host)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    ip = parse_ip(host)
    return ip is not None and ip.is_loopback


async def serve_locked(options: ServeOptions, lock: DataDirLock) -> None:
    port = pick_port(options.host, options.port)
    token, new = load_token(options.data_dir, options.token)
    tls = load_tls(options.data_dir, options.name) if wants_tls(options) else None
    config = AppConfig(
        farm=FarmConfig(
            data_dir=options.data_dir,
            name=options.name,
            token=token,
            lease_seconds=options.lease_seconds,
        ),
        advertise=options.zeroconf,
        zeroconf_interfaces=options.zeroconf_interfaces,
        port=port,
        fingerprint=tls.fingerprint if tls else "",
    )
    # Open long-polls and event streams (workers, dashboards) would otherwise hold
    # a stop up for a minute or two; they all reconnect by themselves.
    app = create_app(config)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE)
    await runner.setup()
    try:
        site = GuardedSite(
            runner,
            options.host,
            port,
            reuse_address=True,
            ssl_context=tls.context if tls else None,
            guard=app[GUARD],
        )
        await site.start()
    except OSError as ex:
        await runner.cleanup()
        raise ServeError(listen_problem(options.host, port, ex)) from ex
    url = public_url(options.host, listening_port(runner, port), tls=tls is not None)
    lock.write_holder(f"the coordinator at {url} (process {os.getpid()})")
    text = banner(
        url,
        token,
        options.data_dir,
        new_token=new,
        zeroconf=options.zeroconf,
        fingerprint=tls.fingerprint if tls else "",
    )
    print(text, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):  # Windows
            loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        print("coordinator stopping", flush=True)
        await runner.cleanup()


def listening_port(runner: web.AppRunner, asked: int) -> int:
    """The port the socket really has, so the banner never names another one."""
    for address in runner.addresses:
        if isinstance(address, tuple) and len(address) >= 2:
            return int(address[1])
    return asked


def serve_forever(main: Coroutine[Any, Any, None]) -> None:
    """Run the server on uvloop where it is installed (Linux, macOS: about a fifth
    more requests per CPU second, see docs/performance.md), else on asyncio's loop."""
    try:
        import uvloop
    except ImportError:
        asyncio.run(main)
        return
    uvloop.run(main)


def default_name() -> str:
    return f"{platform.node() or 'farm'}"
