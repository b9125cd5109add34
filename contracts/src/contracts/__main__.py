"""`python -m contracts export|check`: see contracts.tooling.cli."""

from contracts.tooling.cli import main

raise SystemExit(main())
