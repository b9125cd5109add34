"""Webhooks: subscriptions over HTTP, deliveries staged with their event, a dispatcher that
signs (Standard Webhooks) and sends them with retries and per-subscription bulkheads."""
