"""`farms`: the farms that answer on the LAN by zeroconf, for choosing one with
--farm-name (or --coordinator) when several do. It listens for the whole
--timeout, since a list that stops at the first answer would hide the others.
Given a token (--token, FARM_TOKEN), it also asks each farm to prove it
knows it (sending nothing secret), which is how the other commands choose.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
from typing import TYPE_CHECKING

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

if TYPE_CHECKING:
    from coordinator.client.choosing import Candidate

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
    from coordinator.client import choosing
    from coordinator.client.browser import find_coordinators

    found = find_coordinators(timeout=args.timeout, interfaces=args.zeroconf_interfaces)
    token = args.token or os.environ.get("FARM_TOKEN")
    checked = (
        {c.farm.service_name: c for c in (choosing.check(f, token) for f in found)} if token else {}
    )
    if args.json:
        return print_json(
            [
                dataclasses.asdict(c)
                | {"compatible": c.compatible}
                | ({"proves_token": checked[c.service_name].proven} if token else {})
                for c in found
            ]
        )
    if not found:
        note(f"no farm answered on the LAN within {args.timeout:g} s")
        return EXIT_UNREACHABLE
    rows = [
        [
            c.name,
            c.url,
            (c.api_version or "?") + ("" if c.compatible else " (not this client's)"),
            "" if c.workers is None else c.workers,
            *([proof_text(checked[c.service_name])] if token else []),
        ]
        for c in found
    ]
    headers = ("NAME", "ADDRESS", "API", "WORKERS", *(("TOKEN",) if token else ()))
    print(table(headers, rows))
    if len(found) > 1:
        note("choose one with --farm-name NAME (or FARM_NAME), or --coordinator ADDRESS")
    return EXIT_OK


def proof_text(candidate: Candidate) -> str:
    return "proved" if candidate.proven else f"not proved: {candidate.why_not}"
