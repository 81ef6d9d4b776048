"""`python -m worker_agent`: a headless render worker. See `--help`."""

from __future__ import annotations

from worker_agent.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
