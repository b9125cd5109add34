"""Reliable messaging: transactional outbox + relay, idempotent consumers, retries and DLQ."""
