"""Fleet catalog service."""
