"""Running jobs: the Celery glue, the executor of one attempt, leases and heartbeats."""
