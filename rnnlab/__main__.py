"""`python -m rnnlab ...`: the same command line as the `rnnlab` script."""

from rnnlab.cli import main

raise SystemExit(main())
