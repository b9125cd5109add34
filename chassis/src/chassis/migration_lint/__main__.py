from chassis.migration_lint.cli import main

raise SystemExit(main())
