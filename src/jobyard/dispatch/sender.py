"""Sending committed jobs' messages: at once while workers keep up, several to a message while
a queue has a backlog.

A message per job costs the broker and the Celery worker more than a job that takes a
millisecond. When the broker says a queue already holds messages waiting for a worker (the
length a Redis LPUSH answers), a new job's message would wait behind them anyway: the sender
then returns at once and a background thread sends what accumulated within a linger as one
message of up to the pool's `dispatch_chunk` jobs, which the worker claims and records in bulk
(`execution.chunks`). While the queue keeps up, each submit sends its own message before it
returns, as before. The backlog is re-learnt from each single send and forgotten after
`BACKLOG_TTL_S`, so the sender falls back to sending at once when nothing tells it otherwise
(RabbitMQ answers no length: there a message carries several jobs only for a batch submit).

The guarantees do not change: a row is committed (marked sent) before its message is handed
here; a failed send clears the mark so `redispatch_stale` sends it when the broker is back; a
process that dies with messages still pending leaves rows marked sent with no message, which
the lost-message heal publishes, as after a broker that lost them.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import time
from collections.abc import Collection, Mapping, Sequence

from jobyard.config import Settings
from jobyard.dispatch.broker import Publisher
from jobyard.errors import ServiceUnavailable
from jobyard.store import outbox_queries
from jobyard.store.db import Database
from jobyard.store.jobs import Dispatch

log = logging.getLogger(__name__)
#: A queue holding more messages than this after a send has a backlog.
BACKLOG_MESSAGES = 1
#: How long a seen backlog is believed without a newer answer from the broker.
BACKLOG_TTL_S = 0.5
#: How long a deferred message waits for more jobs, per message waiting ahead of it (which
#: it would wait for anyway: each takes a worker at least about this long) ...
LINGER_PER_WAITING_S = 0.001
#: ... and at most.
LINGER_S = 0.02


class MessageSender:
    """Sends new jobs' messages, coalescing them while their queue has a backlog."""

    def __init__(
        self,
        publisher: Publisher,
        db: Database,
        settings: Settings,
        batched_types: Collection[str] = (),
        *,
        backlog_ttl_s: float = BACKLOG_TTL_S,
    ) -> None:
        """`batched_types`: job types that gather their own batches (never coalesced)."""
        self._backlog_ttl_s = backlog_ttl_s
        self._publisher = publisher
        self._db = db
        self._launched = settings.launched_queues
        self._chunks = {
            settings.queue_for(name): pool.dispatch_chunk for name, pool in settings.pools.items()
        }
        self._batched = frozenset(batched_types)
        self._backlog: dict[str, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self._fork_safe_state()

    def _fork_safe_state(self) -> None:
        """Pending messages and the thread belong to one process (a fork starts empty)."""
        self._pid = os.getpid()
        self._cond = threading.Condition()
        self._pending: list[Dispatch] = []
        self._per_queue: dict[str, int] = {}
        self._first_at = 0.0
        self._sending = False
        self._hurry = False
        self._stopping = False
        self._thread: threading.Thread | None = None

    def send_new(self, dispatches: Sequence[Dispatch]) -> bool:
        """Send messages for jobs stored already marked sent; False when the broker was
        unreachable (their mark is cleared, for `redispatch_stale`)."""
        messages = [d for d in dispatches if d.queue not in self._launched]
        if not messages:
            return True
        later: list[Dispatch] = []
        now: list[Dispatch] = []
        for dispatch in messages:
            (later if self._coalesces(dispatch) else now).append(dispatch)
        ok = self._send_new_now(now) if now else True
        if later:
            self._defer(later)
        return ok

    def send_now(self, dispatches: Sequence[Dispatch]) -> bool:
        """Publish at once (re-dispatches, retries, schedules); False, with a warning, when
        the broker is unreachable."""
        messages = [d for d in dispatches if d.queue not in self._launched]
        if not messages:
            return True
        try:
            lengths = self._publisher.publish(messages)
        except ServiceUnavailable as exc:
            log.warning(
                "broker unavailable; %d job(s) stay in the outbox for re-dispatch",
                len(messages),
                extra={"action": "publish_deferred", "error": str(exc)},
            )
            return False
        self._observe(lengths)
        return True

    def flush(self, timeout_s: float = 10.0) -> None:
        """Send what is deferred now and wait, up to `timeout_s`, until it went out."""
        if self._pid != os.getpid():
            return
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self._hurry = True
            self._cond.notify_all()
            while (self._pending or self._sending) and self._thread is not None:
                left = deadline - time.monotonic()
                if left <= 0 or not self._thread.is_alive():
                    break
                self._cond.wait(left)

    def close(self) -> None:
        """Send what is deferred, then stop the thread."""
        self.flush()
        if self._pid != os.getpid():
            return
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
            thread = self._thread
        if thread is not None:
            thread.join(5.0)
            atexit.unregister(self.flush)

    def _coalesces(self, dispatch: Dispatch) -> bool:
        if self._chunks.get(dispatch.queue, 1) <= 1 or dispatch.type in self._batched:
            return False
        seen = self._backlog.get(dispatch.queue)
        if seen is None:
            return False
        length, at = seen
        return length > BACKLOG_MESSAGES and time.monotonic() - at < self._backlog_ttl_s

    def _observe(self, lengths: Mapping[str, int]) -> None:
        now = time.monotonic()
        for queue, length in lengths.items():
            self._backlog[queue] = (length, now)

    def _send_new_now(self, messages: Sequence[Dispatch]) -> bool:
        if self.send_now(messages):
            return True
        try:
            with self._db.write() as conn:
                outbox_queries.mark_undispatched(conn, [d.id for d in messages])
        except Exception as exc:  # the database is gone too: the lost-message heal has them
            log.warning("could not clear their dispatch mark: %s", exc)
        return False

    def _defer(self, dispatches: Sequence[Dispatch]) -> None:
        if self._pid != os.getpid():
            with self._lock:
                if self._pid != os.getpid():
                    self._fork_safe_state()
        with self._cond:
            if not self._pending:
                self._first_at = time.monotonic()
            self._pending.extend(dispatches)
            for item in dispatches:
                self._per_queue[item.queue] = self._per_queue.get(item.queue, 0) + 1
            if self._thread is None or not self._thread.is_alive():
                self._stopping = False
                self._thread = threading.Thread(
                    target=self._run, name="jobyard-message-sender", daemon=True
                )
                self._thread.start()
                atexit.register(self.flush)
            self._cond.notify_all()

    def _linger_s(self) -> float:
        """How long to gather: a millisecond per message waiting in the busiest queue, up to
        `LINGER_S` (nothing is known: no waiting)."""
        waiting = max((self._backlog.get(q, (0, 0.0))[0] for q in self._per_queue), default=0)
        return min(LINGER_S, LINGER_PER_WAITING_S * waiting)

    def _full(self) -> bool:
        return any(count >= self._chunks.get(q, 1) for q, count in self._per_queue.items())

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._hurry = False
                    self._cond.wait()
                if not self._pending:
                    return
                deadline = self._first_at + self._linger_s()
                while not (self._hurry or self._stopping or self._full()):
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
                batch, self._pending, self._per_queue = self._pending, [], {}
                self._sending = True
            try:
                self._send_new_now(batch)
            except Exception:  # never let the thread die with messages to send
                log.exception("sending %d deferred job message(s) failed", len(batch))
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()
