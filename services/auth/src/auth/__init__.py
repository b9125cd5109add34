"""Fleet auth service."""
