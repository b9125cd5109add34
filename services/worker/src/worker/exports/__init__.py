"""Exports of orders: asked for through the API, written by a command in the worker."""
