"""Polling: who is due (`schedule`), how each provider is asked (`client`, `limits`, `retry`),
each provider's own loop (`provider_loop`), the single warehouse writer (`writer`), and runs of
them: one pass or a window (`tick`). Log lines are scrubbed by `redact`."""
