"""Getting committed jobs to their pool's queue: submit, publish, outbox re-dispatch."""
