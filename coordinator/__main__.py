"""`python -m coordinator`: serve | submit | jobs | job | cancel | ... (see coordinator/cli/)."""

from coordinator.cli.entry import main

raise SystemExit(main())
