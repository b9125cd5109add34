from migration_lint.cli import main

raise SystemExit(main())
