"""Documented exit codes of every jobyard command."""

from __future__ import annotations

from jobyard.execution import stall_watch

OK = 0
#: The command ran but the job it waited for failed or was cancelled; or an API-level refusal.
FAILURE = 1
#: Bad usage or invalid configuration.
USAGE = 2
#: A service (database, broker) could not be reached.
UNAVAILABLE = 3
#: A worker whose consumer stalled and did not recover by reconnecting: restart it.
STALLED = stall_watch.EXIT_CODE
#: Interrupted by Ctrl-C.
INTERRUPTED = 130
