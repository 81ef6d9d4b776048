"""What every command of `python -m coordinator` shares: exit codes, the one
expected error, the connection to a coordinator (address, token, discovery),
the options every client command accepts, and plain-text output helpers.

No aiohttp and no server here: only `serve` and `openapi-docs` reach the
server, inside their commands, so the client commands start quickly.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO
from urllib.parse import urlsplit, urlunsplit

from coordinator.client.http import AuthError, FarmClient, FarmClientError, Progress, Unreachable
from coordinator.core.datadirs import coordinator_data_dir
from coordinator.core.protocol import DEFAULT_PORT

if TYPE_CHECKING:
    from coordinator.client.browser import FoundCoordinator

log = logging.getLogger(__name__)

JSON = dict[str, Any]

EXIT_OK = 0
EXIT_FAILED = 1  # job failed/canceled (--wait), a no, a bulk delete skipped some, server fault
EXIT_USAGE = 2  # bad options or input; the coordinator refused the request (4xx)
EXIT_UNREACHABLE = 3  # no coordinator at that address, or none found on the LAN
EXIT_AUTH = 4  # wrong or missing farm token
EXIT_TIMEOUT = 5  # --timeout ran out before the job ended (the job goes on)

DISCOVERY_TIMEOUT = 3.0  # seconds to look for a coordinator by zeroconf
DISCOVERY_SETTLE = 1.0  # seconds to listen for more farms once one answered
LOOPBACK = ("127.0.0.1", "localhost", "::1")

NO_COORDINATOR = (
    "no farm coordinator found on the LAN within {timeout:g} s; pass --coordinator URL"
    " (or set FARM_COORDINATOR), or start one with `lanfarm serve`"
)


class CliError(Exception):
    """An expected failure: the message is for a person, the code for scripts."""

    def __init__(self, message: str, code: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def note(text: str) -> None:
    """Notes and progress go to stderr, so stdout carries only results."""
    print(text, file=sys.stderr, flush=True)


# ============================================================ connecting
class CliClient(FarmClient):
    """FarmClient that counts the files it actually sends, for submit's summary."""

    files_sent = 0

    def upload_file(self, sha: str, path: Path, *, progress: Progress | None = None) -> None:
        super().upload_file(sha, path, progress=progress)
        self.files_sent += 1


class Connection:
    """The coordinator a command talks to, found and opened on first use, so a
    command that needs none (`serve`, `openapi-docs`) never looks for one."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self._client: CliClient | None = None

    def client(self) -> CliClient:
        if self._client is None:
            # A farm found on the LAN is sent a token only once it proved it knows it.
            plain_http = None if explicit_url(self.args) else False
            url = coordinator_url(self.args)
            token = farm_token(self.args, url)
            self._client = CliClient(url, token=token, plain_http=plain_http)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.session.close()


def explicit_url(args: argparse.Namespace) -> str | None:
    return getattr(args, "coordinator", None) or os.environ.get("FARM_COORDINATOR") or None


def coordinator_url(args: argparse.Namespace) -> str:
    url = explicit_url(args)
    if not url:
        token = args.token or os.environ.get("FARM_TOKEN")
        return discover(args.zeroconf_interfaces, farm_name(args), token=token)
    return with_farm_port(url)


def with_farm_port(url: str) -> str:
    """ "render-boss" means the farm on render-boss, at the farm's port, not
    HTTP's 80: a port is added where none is given (":80" asks for 80)."""
    if "://" not in url:
        url = f"http://{url}"  # "render-boss:8765" is what people type
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError as ex:
        raise CliError(f"bad coordinator address {url!r}: {ex}") from ex
    if port is not None or not parts.hostname:
        return url
    return urlunsplit(parts._replace(netloc=f"{parts.netloc}:{DEFAULT_PORT}"))


def farm_name(args: argparse.Namespace) -> str | None:
    return getattr(args, "farm_name", None) or os.environ.get("FARM_NAME") or None


def local_token_file() -> Path:
    """token.txt of a coordinator started here with its default data folder."""
    return coordinator_data_dir() / "token.txt"


def farm_token(args: argparse.Namespace, url: str) -> str | None:
    """--token, FARM_TOKEN, or the token of a coordinator on this machine.

    The local token.txt is only ever sent to a loopback address, so a token
    never leaves the machine for a coordinator it does not belong to.
    """
    token = args.token or os.environ.get("FARM_TOKEN")
    if token or urlsplit(url).hostname not in LOOPBACK:
        return token
    try:
        return local_token_file().read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def discover(interfaces: list[str] | None, name: str | None, *, token: str | None = None) -> str:
    """The farm on the LAN (or the one called `name`) that proves the token; never
    a guess between several. Without a token, the one farm found (several are
    listed, and the person chooses); nothing secret goes to it unproven."""
    if token:
        return proven_farm(interfaces, name, token)
    found = find_farms(interfaces, name)
    usable = [c for c in found if c.compatible]
    if len(usable) == 1:
        chosen = usable[0]
        note(f"using coordinator {chosen.name!r} at {chosen.url} (found on the LAN)")
        return chosen.url
    if len(usable) > 1:
        listing = "; ".join(f"{c.name!r} at {c.url}" for c in usable)
        raise CliError(f"{len(usable)} farms answered on the LAN: {listing}; {_choose(name)}")
    return _none_usable(found, name)


def _choose(name: str | None) -> str:
    how = "--coordinator URL" if name else "--farm-name NAME (or FARM_NAME) or --coordinator URL"
    return f"choose one with {how}"


def _none_usable(found: list[FoundCoordinator], name: str | None) -> NoReturn:
    if found:
        raise CliError(
            f"found {found[0].name!r} at {found[0].url}, but it speaks API version"
            f" {found[0].api_version or '?'}; update this client or pass --coordinator",
            EXIT_UNREACHABLE,
        )
    if name:
        raise CliError(
            f"no farm named {name!r} answered on the LAN within {DISCOVERY_TIMEOUT:g} s;"
            " `lanfarm farms` lists those that do",
            EXIT_UNREACHABLE,
        )
    raise CliError(NO_COORDINATOR.format(timeout=DISCOVERY_TIMEOUT), EXIT_UNREACHABLE)


def proven_farm(interfaces: list[str] | None, name: str | None, token: str) -> str:
    """The one farm that proves it knows the token, said aloud; several that do are
    listed for the person to choose, as the farms found without a token are."""
    from coordinator.client import choosing

    found = choosing.search(
        token, interfaces=interfaces, name=name, timeout=DISCOVERY_TIMEOUT, settle=DISCOVERY_SETTLE
    )
    good, bad = found.good, found.bad
    if not good and not bad:
        _none_usable(found.found, name)
    if not good:
        raise CliError(
            f"no farm found on the LAN proved that it knows this farm token, so none was sent"
            f" it: {choosing.describe(bad)}; check --token (or FARM_TOKEN), or pass"
            " --coordinator URL",
            EXIT_AUTH,
        )
    if len(good) > 1:
        listing = "; ".join(f"{c.farm.name!r} at {c.farm.url}" for c in good)
        raise CliError(
            f"{len(good)} farms answered on the LAN and know this token: {listing}; {_choose(name)}"
        )
    chosen = good[0]
    note(
        f"using coordinator {chosen.farm.name!r} at {chosen.farm.url} (found on the LAN; it"
        f" proved it knows the farm token; certificate SHA-256 {chosen.fingerprint})"
    )
    if bad:
        note(f"not used: {choosing.describe(bad)}")
    return chosen.farm.url


def find_farms(interfaces: list[str] | None, name: str | None) -> list[FoundCoordinator]:
    """Farms answering by zeroconf: up to the first answer, then a moment more, so
    that a second farm is seen, not passed over."""
    from coordinator.client import browser as discovery

    found = discovery.find_coordinators(
        first=True,
        timeout=DISCOVERY_TIMEOUT,
        settle=DISCOVERY_SETTLE,
        interfaces=interfaces,
        name=name,
    )
    unique = {c.service_name: c for c in found}
    return sorted(unique.values(), key=lambda c: (c.name.casefold(), c.url))


def exit_code_for(ex: FarmClientError) -> int:
    if isinstance(ex, Unreachable):
        return EXIT_UNREACHABLE
    if isinstance(ex, AuthError) or ex.status in (401, 403):
        return EXIT_AUTH
    if ex.status is not None and 400 <= ex.status < 500:
        return EXIT_USAGE
    return EXIT_FAILED


# ============================================================== commands
Command = Callable[[argparse.Namespace, Connection], int]


def connection_options(*, suppress: bool, coordinator: bool = True) -> argparse.ArgumentParser:
    """Options accepted before and after the command.

    The copy after the command defaults to SUPPRESS, so it only overrides
    what the user actually typed there.
    """
    default = argparse.SUPPRESS if suppress else None
    p = argparse.ArgumentParser(add_help=False)
    if coordinator:
        p.add_argument(
            "--coordinator",
            metavar="URL",
            default=default,
            help="coordinator address, e.g. render-boss or http://render-boss:8765 (port 8765"
            " unless given; env FARM_COORDINATOR; default: find the farm on the LAN)",
        )
        p.add_argument(
            "--farm-name",
            metavar="NAME",
            default=default,
            help="with several farms on the LAN, the one started with --name NAME"
            " (env FARM_NAME; see `farms`)",
        )
    p.add_argument(
        "--token",
        default=default,
        help="the farm token printed by `serve` (env FARM_TOKEN)",
    )
    p.add_argument(
        "--zeroconf-interface",
        metavar="IP",
        action="append",
        dest="zeroconf_interfaces",
        default=default,
        help="use zeroconf only on this local address (repeatable)",
    )
    p.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        default=argparse.SUPPRESS if suppress else False,
        help="debug logging",
    )
    return p


class Commands:
    """The subcommands of `python -m coordinator`: each command module adds its
    own through `add`, so a new command touches one module."""

    def __init__(self, subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
        self._subparsers = subparsers
        self._client_options = connection_options(suppress=True)

    def add(
        self,
        name: str,
        func: Command,
        text: str,
        *,
        parents: list[argparse.ArgumentParser] | None = None,
        **kw: Any,
    ) -> argparse.ArgumentParser:
        """A subcommand running `func`; by default it takes the client options."""
        if parents is None:
            parents = [self._client_options]
        p = self._subparsers.add_parser(name, help=text, description=text, parents=parents, **kw)
        p.set_defaults(func=func)
        return p


JOB_FILTERS = ("status", "type", "name", "submitter", "after", "before")  # of GET /jobs


def add_job_filters(p: argparse.ArgumentParser, *, status_help: str) -> None:
    """The options that choose jobs, as `jobs` lists them and `delete` deletes them."""
    p.add_argument("--status", help=status_help)
    p.add_argument("--type", help="comma list of job types")
    p.add_argument("--name", help="name contains this, or matches a glob like 'shot_*'")
    p.add_argument("--submitter", help="submitter contains this, or matches a glob")
    p.add_argument("--after", metavar="DATE", help="submitted at/after, e.g. 2026-11-29")
    p.add_argument("--before", metavar="DATE", help="submitted before")


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected 1 or more, got {value}")
    return value


# ========================================================== small output
def table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain text table; columns as wide as their widest cell."""
    cells = [[str(h) for h in headers]] + [["" if c is None else str(c) for c in r] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    )


def clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def when(timestamp: float | None) -> str:
    if not timestamp:
        return ""
    return datetime.fromtimestamp(timestamp).strftime("%Y-%m-%d %H:%M")


def megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def bar(fraction: float, width: int = 24) -> str:
    filled = round(max(0.0, min(1.0, fraction)) * width)
    return f"[{'#' * filled}{'-' * (width - filled)}] {fraction * 100:3.0f}%"


def task_counts(job: JSON) -> tuple[int, int]:
    """(tasks completed, tasks in all) of a job as the API sends it."""
    counts = job.get("task_counts") or {}
    return counts.get("completed", 0), sum(counts.values())


class StatusLine:
    """Progress on stderr: one updating line on a terminal, plain lines elsewhere.

    Plain lines are for logs and CI: a line when something important changed,
    otherwise at most one every `every` seconds.
    """

    def __init__(self, stream: TextIO, *, every: float = 10.0) -> None:
        self.stream = stream
        self.tty = stream.isatty()
        self.every = every
        self._last_text = ""
        self._last_time = 0.0
        self._width = 0

    def show(self, text: str, *, important: bool = False) -> None:
        now = time.monotonic()
        if self.tty:
            if important or now - self._last_time >= 0.1:
                self.stream.write("\r" + text.ljust(self._width))
                self.stream.flush()
                self._width, self._last_time = len(text), now
        elif text != self._last_text and (important or now - self._last_time >= self.every):
            print(text, file=self.stream, flush=True)
            self._last_text, self._last_time = text, now

    def interrupt(self, text: str) -> None:
        """A line of its own between status updates (a warning), kept on screen."""
        if self.tty and self._width:
            self.stream.write("\r" + " " * self._width + "\r")
            self._width = 0
        print(text, file=self.stream, flush=True)
        self._last_text, self._last_time = "", 0.0  # show the status again right after

    def close(self) -> None:
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
