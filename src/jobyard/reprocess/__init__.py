"""Re-processing past jobs: run every matching job again as a new job linked to it.

The "re-process all images with the new model" workflow. A campaign is named by what it
selects (or by the caller); each re-run's idempotency key is `rerun:<campaign>:<original>`,
so running the same campaign again — after a crash, a Ctrl-C, a database restart — submits
only what is still missing, and never a job twice.
"""
