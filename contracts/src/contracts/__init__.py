"""Fleet's shared contracts: schemas only, no I/O."""
