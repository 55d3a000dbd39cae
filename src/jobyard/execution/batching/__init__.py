"""Batched job types: several queued jobs of one type run in one call of their function.

`gather` claims the batch (the message's own job and more of its type, waiting a little for
them); `run` calls the function once and records each job's own outcome, running every job
alone when the batch call raised.
"""
