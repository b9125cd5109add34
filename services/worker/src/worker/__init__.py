"""Fleet worker: side effects of events (e-mail, signed webhooks)."""
