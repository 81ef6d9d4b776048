"""`python -m coordinator`: serve | submit | jobs | job | cancel | ... (see cli.py)."""

from coordinator.cli.main import main

raise SystemExit(main())
