"""The scheduler process: outbox re-dispatch, retry promotion and the reaper."""
