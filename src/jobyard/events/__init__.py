"""Job events (state changes, progress, log lines), published as they happen."""
