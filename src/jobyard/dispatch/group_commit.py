"""Group commit: concurrent submits of one web process share one statement and one commit.

Each submit committed alone waits for its own write-ahead-log flush and its own round trip,
and 50 clients at once queue behind each other for them. Here one thread stores every submit
that arrived while the previous group was being stored, in one statement with their audit
entries (`job_inserts.insert_rows`), sends their messages, then answers them all. Nothing
waits for a group to fill: an idle process stores a lone submit at once, so grouping adds no
latency, and under load a group is as large as the load makes it (at most `MAX_GROUP`).

The guarantees are a lone submit's: a caller is answered only after its row is committed;
a group whose statement failed for a reason of its own rows (a constraint, bad data) is
stored again one row at a time, so only the bad row fails; a group that failed because the
database was away fails as a whole, and no caller was told it was stored.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from jobyard.dispatch.submit import announce
from jobyard.errors import ServiceUnavailable
from jobyard.runtime import Runtime
from jobyard.store import job_inserts
from jobyard.store.db import is_transient
from jobyard.store.records import JobRecord

log = logging.getLogger(__name__)
#: Most submits stored by one statement (its parameters grow with it).
MAX_GROUP = 100


@dataclass(frozen=True, slots=True)
class _Pending:
    row: Mapping[str, Any]
    audit_rows: Sequence[Mapping[str, Any]]
    future: asyncio.Future[None]


class GroupCommitter:
    """Stores new jobs for coroutines of one event loop, grouping those that arrive together."""

    def __init__(self, runtime: Runtime, loop: asyncio.AbstractEventLoop) -> None:
        self._runtime = runtime
        self._loop = loop
        self._queue: queue.SimpleQueue[_Pending | None] = queue.SimpleQueue()
        #: Statements that stored jobs, and the jobs they stored (their ratio: the grouping).
        self.statements = 0
        self.stored = 0
        self._thread = threading.Thread(target=self._run, name="jobyard-group-commit", daemon=True)
        self._thread.start()

    async def store(self, row: Mapping[str, Any], audit_rows: Sequence[Mapping[str, Any]]) -> None:
        """Commit one validated new job row (`submit.job_row`) and its audit entries, then
        send its message; returns once the row is committed.

        Raises:
            ServiceUnavailable: the committer was closed.
            Exception: what storing it raised (a database error, for the app's handlers).
        """
        if not self._thread.is_alive():  # closed (shutting down): nothing would store it
            raise ServiceUnavailable("this web process is shutting down: submit again")
        future: asyncio.Future[None] = self._loop.create_future()
        self._queue.put(_Pending(row, audit_rows, future))
        await future

    def close(self, timeout_s: float = 10.0) -> None:
        """Store what is queued, then stop the thread."""
        self._queue.put(None)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._runtime.db.release_held()

    def _serve(self) -> None:
        stopping = False
        while not stopping:
            first = self._queue.get()
            if first is None:
                return
            group = [first]
            while len(group) < MAX_GROUP:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                group.append(item)
            try:
                self._commit(group)
            except Exception as exc:  # a bug here must not leave callers waiting forever
                log.exception("storing a group of %d submits failed", len(group))
                self._settle(group, exc)

    def _commit(self, group: list[_Pending]) -> None:
        try:
            self._insert(group)
        except Exception as exc:
            if len(group) == 1 or is_transient(exc):
                self._settle(group, exc)
                return
            log.warning(
                "a group of %d submits failed (%s); storing them one by one",
                len(group),
                type(exc).__name__,
                extra={"action": "group_commit_split"},
            )
            for pending in group:
                self._commit([pending])
            return
        # Sent before the callers are answered, as a lone submit does while its queue keeps up:
        # a 201 means the message is with the broker too (or the job is left to the outbox).
        try:
            announce(self._runtime, [JobRecord.from_new_row(p.row) for p in group])
        except Exception:  # committed: the outbox heal sends what did not go out
            log.exception("announcing %d committed submits failed", len(group))
        self._settle(group, None)

    def _insert(self, group: list[_Pending]) -> None:
        rows = [p.row for p in group]
        audit_rows = [entry for p in group for entry in p.audit_rows]
        # The thread's own held connection: a pool checkout and return per group cost more
        # CPU than building the statement.
        with self._runtime.db.single() as conn:
            job_inserts.insert_rows(conn, rows, audit_rows)
        self.statements += 1
        self.stored += len(rows)

    def _settle(self, group: list[_Pending], error: Exception | None) -> None:
        futures = [p.future for p in group]
        try:
            self._loop.call_soon_threadsafe(_settle_all, futures, error)
        except RuntimeError:  # the loop closed: nobody is waiting any more
            pass


def _settle_all(futures: list[asyncio.Future[None]], error: Exception | None) -> None:
    for future in futures:
        if future.done():  # the caller went away (cancelled)
            continue
        if error is None:
            future.set_result(None)
        else:
            future.set_exception(error)
