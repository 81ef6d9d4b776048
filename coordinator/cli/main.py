"""`python -m coordinator ...`: run a farm, submit jobs and look after them.

This module only assembles the parser from the command modules and maps the
expected failures to exit codes; each group of commands lives in its own
module and registers its own subcommands:

  serve     run a coordinator (the one door to the server, with apidocs)
  submit    submit, with project upload and --wait
  waiting   wait; --wait, job --follow and log --follow share it
  inspect   job-types, jobs, job, log, workers
  farms     the farms that answer on the LAN
  pull      download a job's outputs
  apidocs   openapi-docs: the HTTP API reference as Markdown
  control   cancel, pause, ..., regenerate, task and worker actions

Results go to stdout (`submit` prints only the job id there, so scripts can
capture it); notes and progress go to stderr. An expected failure prints one
`error: ...` line and exits with a code scripts can branch on (the EXIT_*
constants of `common`), never with a traceback.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import sys

import requests

from coordinator.cli import apidocs, control, farms, inspect, pull, serve, submit, waiting
from coordinator.cli.common import (
    EXIT_FAILED,
    EXIT_OK,
    EXIT_UNREACHABLE,
    EXIT_USAGE,
    CliError,
    Commands,
    Connection,
    connection_options,
    exit_code_for,
    note,
)
from coordinator.client.http import FarmClientError
from coordinator.core.network import parse_ip

log = logging.getLogger(__name__)

# In the order `--help` lists them.
COMMAND_MODULES = (serve, submit, waiting, inspect, farms, pull, apidocs, control)
EXIT_INTERRUPTED = 130  # what a shell reports for Ctrl+C


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="lanfarm",
        description="The LAN render farm for Blender: run a coordinator, submit jobs,"
        " watch and manage them. See docs/cli.md.",
        parents=[connection_options(suppress=False)],
    )
    commands = Commands(parser.add_subparsers(dest="command", required=True, metavar="COMMAND"))
    for module in COMMAND_MODULES:
        module.register(commands)
    return parser


def join_sort_values(argv: list[str]) -> list[str]:
    """`--sort -created` -> `--sort=-created`: argparse reads "-created" as an option."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] == "--sort" and arg.startswith("-") and arg[1:2].isalpha():
            out[-1] = f"--sort={arg}"
        else:
            out.append(arg)
    return out


def main(argv: list[str] | None = None) -> int:
    """The command line's exit code; Ctrl+C at any moment, even while the
    parser is being built, is exit 130 and one line, never a traceback."""
    try:
        return _main(argv)
    except KeyboardInterrupt:
        note("interrupted")
        return EXIT_INTERRUPTED


def _main(argv: list[str] | None) -> int:
    argv = join_sort_values(sys.argv[1:] if argv is None else list(argv))
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as ex:  # --help, or a usage error argparse already printed
        return ex.code if isinstance(ex.code, int) else EXIT_USAGE
    if args.command != "serve":
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.WARNING,
            format="%(levelname)s %(name)s: %(message)s",
        )
    bad = [i for i in getattr(args, "zeroconf_interfaces", None) or () if parse_ip(i) is None]
    if bad:  # before zeroconf reads it (serve says the same in its own words)
        note(
            f"error: --zeroconf-interface {bad[0]!r} is not an IP address; give an address"
            " of this machine, e.g. 192.168.1.20"
        )
        return EXIT_USAGE
    conn = Connection(args)
    try:
        return run_command(args, conn)
    finally:
        conn.close()


def run_command(args: argparse.Namespace, conn: Connection) -> int:
    """The command's exit code; an expected failure becomes one `error:` line."""
    try:
        code: int = args.func(args, conn)
        return code
    except CliError as ex:
        note(f"error: {ex.message}")
        return ex.code
    except FarmClientError as ex:
        note(f"error: {ex.message}")
        return exit_code_for(ex)
    except (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema) as ex:
        note(f"error: bad coordinator address: {ex}")
        return EXIT_USAGE
    except requests.RequestException as ex:
        note(f"error: talking to the coordinator failed: {ex}")
        return EXIT_UNREACHABLE
    except KeyboardInterrupt:
        note("interrupted")
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # e.g. `jobs | head`: the reader has gone
        with contextlib.suppress(OSError, ValueError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # quiet exit flush
        return EXIT_OK
    except OSError as ex:
        note(f"error: {ex}")
        return EXIT_FAILED
