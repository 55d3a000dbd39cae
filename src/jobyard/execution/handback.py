"""Handing the rest of a multi-job message back to the queue when one of its jobs runs long.

A message carries several jobs only while its queue has a backlog or for a batch submit
(`dispatch.sender`), and they run one after another. When one of them turns out slow, the jobs
behind it would wait for it while other workers may be free: after `SLOW_S` a watcher thread
sends the jobs not yet claimed back to the queue as two messages (so a run of slow jobs spreads
over the workers in a few halvings while fast ones stay batched) and the message's runner stops
after the job in hand. If that send fails, the runner simply carries on with them.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

log = logging.getLogger(__name__)
#: A job of a multi-job message running longer than this hands the rest back.
SLOW_S = 0.05

#: Sends jobs (ids, still queued) back to their queue; False when it could not.
SendBack = Callable[[Sequence[uuid.UUID]], bool]


@dataclass(eq=False)
class Watch:
    """One running group of a message: when it is due, and the jobs behind it."""

    deadline: float
    rest: Sequence[uuid.UUID]
    handing: bool = False
    handed: bool = False
    done: threading.Event = field(default_factory=threading.Event)


class HandBack:
    """One watcher thread per process for every message being run (a threads pool runs
    several at once)."""

    def __init__(self, send_back: SendBack, slow_s: float = SLOW_S) -> None:
        self._send_back = send_back
        self._slow_s = slow_s
        self._cond = threading.Condition()
        self._watches: list[Watch] = []
        self._thread: threading.Thread | None = None
        self._pid = 0

    def arm(self, rest: Sequence[uuid.UUID]) -> Watch | None:
        """Watch the group about to run; `rest` are the message's jobs after it."""
        if not rest:
            return None
        watch = Watch(time.monotonic() + self._slow_s, rest)
        with self._cond:
            self._ensure_thread()
            self._watches.append(watch)
            self._cond.notify_all()
        return watch

    def disarm(self, watch: Watch | None) -> bool:
        """The group finished: True when the rest was handed back (stop the message here)."""
        if watch is None:
            return False
        with self._cond:
            if watch in self._watches:
                self._watches.remove(watch)
                return False
            handing = watch.handing
        if handing:
            watch.done.wait()
        return watch.handed

    def _ensure_thread(self) -> None:
        if self._thread is not None and self._pid == os.getpid() and self._thread.is_alive():
            return
        self._pid = os.getpid()
        self._thread = threading.Thread(target=self._run, name="jobyard-handback", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._watches:
                    self._cond.wait()
                now = time.monotonic()
                due = [w for w in self._watches if w.deadline <= now]
                if not due:
                    self._cond.wait(min(w.deadline for w in self._watches) - now)
                    continue
                for watch in due:
                    self._watches.remove(watch)
                    watch.handing = True
            for watch in due:
                self._hand_back(watch)

    def _hand_back(self, watch: Watch) -> None:
        try:
            watch.handed = self._send_back(watch.rest)
        except Exception:
            log.warning("handing %d jobs back to the queue failed", len(watch.rest), exc_info=True)
        finally:
            watch.done.set()
