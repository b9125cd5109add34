"""Reconciliation: what orders and catalog believe about the orders they share, compared."""
