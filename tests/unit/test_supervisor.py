"""The supervisor of `jobyard up`: restarts crashes, and stops on a configuration error."""

from __future__ import annotations

import sys
import threading
import time

from jobyard.supervisor import ChildSpec, Supervisor


def test_a_child_with_a_configuration_error_stops_the_supervisor() -> None:
    events: list[str] = []
    supervisor = Supervisor(
        [
            ChildSpec("steady", [sys.executable, "-c", "import time; time.sleep(30)"]),
            ChildSpec("misconfigured", [sys.executable, "-c", "raise SystemExit(2)"]),
        ],
        on_event=events.append,
    )
    supervisor.start()
    began = time.monotonic()
    try:
        supervisor.run(threading.Event(), poll_s=0.05)
    finally:
        supervisor.stop(grace_s=5)
    assert supervisor.fatal == ("misconfigured", 2)
    assert time.monotonic() - began < 10
    assert not [e for e in events if "restarting" in e]  # never restarted in a loop


def test_a_crashing_child_is_restarted() -> None:
    events: list[str] = []
    supervisor = Supervisor(
        [ChildSpec("crashy", [sys.executable, "-c", "raise SystemExit(1)"])],
        on_event=events.append,
    )
    stop = threading.Event()
    supervisor.start()
    timer = threading.Timer(1.0, stop.set)
    timer.start()
    try:
        supervisor.run(stop, poll_s=0.05)
    finally:
        supervisor.stop(grace_s=5)
        timer.cancel()
    assert supervisor.fatal is None
    assert any("crashy exited with code 1; restarting" in e for e in events)
