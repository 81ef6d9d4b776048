"""`python -m coordinator`: serve | submit | jobs | job | cancel | ... (see coordinator/cli/)."""

import sys

try:
    from coordinator.cli.main import main
except KeyboardInterrupt:  # Ctrl+C while Python imports the command line: no traceback
    print("interrupted", file=sys.stderr)
    raise SystemExit(130) from None

raise SystemExit(main())
