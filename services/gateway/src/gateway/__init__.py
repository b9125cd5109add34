"""Fleet gateway service."""
