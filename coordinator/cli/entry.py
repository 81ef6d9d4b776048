"""The `lanfarm` command's entry point (and `python -m coordinator`'s).

Importing the command line takes a moment (aiohttp, requests, zeroconf); a
Ctrl+C in that moment is exit 130 and one line, as it is once the command
runs (`main.main`), never a traceback.
"""

from __future__ import annotations

import sys

EXIT_INTERRUPTED = 130  # as coordinator.cli.main's, which is not imported yet


def main() -> int:
    try:
        from coordinator.cli.main import main as run
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    return run()
