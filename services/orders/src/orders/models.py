"""Persistence model of orders; its tables arrive with the order saga."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase

from chassis.db import schema_metadata

SCHEMA = "orders"


class Base(DeclarativeBase):
    metadata = schema_metadata(SCHEMA)
