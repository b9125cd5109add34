"""Persistence model of the worker (notifications, webhook deliveries)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from chassis.db import schema_metadata

SCHEMA = "worker"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
