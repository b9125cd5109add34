"""Fleet's local tooling: bootstrap the databases, run the fleet as processes, test fixtures."""
