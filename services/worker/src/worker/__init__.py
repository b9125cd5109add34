"""Fleet worker service."""
