"""Fleet worker: side effects of events (e-mail, signed webhooks); behaviour arrives with the worker issue."""
