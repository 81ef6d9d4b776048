"""`farms`: the farms that answer on the LAN by zeroconf, for choosing one with
--farm-name (or --coordinator) when several do. It listens for the whole
--timeout, since a list that stops at the first answer would hide the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging

from coordinator.cli.common import (
    DISCOVERY_TIMEOUT,
    EXIT_OK,
    EXIT_UNREACHABLE,
    Commands,
    Connection,
    note,
    table,
)
from coordinator.cli.inspect import print_json
from coordinator.cli.waiting import positive_seconds

log = logging.getLogger(__name__)


def register(commands: Commands) -> None:
    p = commands.add("farms", cmd_farms, "list the farms that answer on the LAN (zeroconf)")
    p.add_argument(
        "--timeout",
        type=positive_seconds,
        default=DISCOVERY_TIMEOUT,
        metavar="SECONDS",
        help="how long to listen (default: %(default)g)",
    )
    p.add_argument("--json", action="store_true", help="machine-readable output")


def cmd_farms(args: argparse.Namespace, conn: Connection) -> int:
    from coordinator.client.browser import find_coordinators

    found = find_coordinators(timeout=args.timeout, interfaces=args.zeroconf_interfaces)
    if args.json:
        return print_json([dataclasses.asdict(c) | {"compatible": c.compatible} for c in found])
    if not found:
        note(f"no farm answered on the LAN within {args.timeout:g} s")
        return EXIT_UNREACHABLE
    rows = [
        [
            c.name,
            c.url,
            (c.api_version or "?") + ("" if c.compatible else " (not this client's)"),
            "" if c.workers is None else c.workers,
        ]
        for c in found
    ]
    print(table(("NAME", "ADDRESS", "API", "WORKERS"), rows))
    if len(found) > 1:
        note("choose one with --farm-name NAME (or FARM_NAME), or --coordinator ADDRESS")
    return EXIT_OK
