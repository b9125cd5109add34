"""`python -m contract_schemas export|check`: see contract_schemas.cli."""

from contract_schemas.cli import main

raise SystemExit(main())
