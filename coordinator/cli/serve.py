"""`serve`: run a farm coordinator on this machine.

The one command that starts the server, and so the one CLI module that
imports `coordinator.server`; it does so inside the command, so the client
commands never load aiohttp.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from coordinator.cli.common import EXIT_OK, CliError, Commands, Connection, connection_options

if TYPE_CHECKING:
    from coordinator.server.serve import ServeOptions

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    p = commands.add(
        "serve",
        cmd_serve,
        "run a farm coordinator on this machine",
        parents=[connection_options(suppress=True, coordinator=False)],
    )
    p.add_argument("--host", default="0.0.0.0", help="address to listen on (default: %(default)s)")
    p.add_argument("--port", type=int, help="port, 1-65535 (default: 8765 or the next free one)")
    p.add_argument("--data-dir", metavar="DIR", help="database, files, logs, token.txt")
    p.add_argument("--name", help="the farm's name shown to artists (default: host name)")
    p.add_argument("--no-zeroconf", action="store_true", help="do not advertise on the LAN")
    p.add_argument(
        "--tls",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="serve HTTPS with the farm's own certificate (default: on, except on a loopback"
        " --host, where --tls turns it on)",
    )
    p.add_argument(
        "--lease-seconds",
        type=float,
        default=60.0,
        metavar="S",
        help="a silent worker loses its task after this, 1 to 86400 (default: %(default)g)",
    )


def cmd_serve(args: argparse.Namespace, conn: Connection) -> int:
    from coordinator.server.serve import ServeError, run_server, serve_forever

    log_to_stderr(verbose=args.verbose)
    options = serve_options(args)
    try:
        serve_forever(run_server(options))
    except KeyboardInterrupt:
        pass
    except ServeError as ex:
        raise CliError(str(ex)) from ex
    except OSError as ex:
        where = f"{options.host}:{options.port or 'default port'}"
        raise CliError(f"cannot serve on {where}: {ex.strerror or ex}") from ex
    return EXIT_OK


def serve_options(args: argparse.Namespace) -> ServeOptions:
    from coordinator.server.serve import ServeOptions, default_data_dir, default_name

    return ServeOptions(
        host=args.host,
        port=args.port,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else default_data_dir(),
        token=args.token,
        name=args.name or default_name(),
        zeroconf=not args.no_zeroconf,
        zeroconf_interfaces=args.zeroconf_interfaces or None,
        lease_seconds=args.lease_seconds,
        tls=args.tls,
    )


def log_to_stderr(*, verbose: bool) -> None:
    """A coordinator's log is its console output: timestamped, INFO and up."""
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(message)s",
        datefmt="%H:%M:%S",
        stream=sys.stderr,
        force=True,
    )
