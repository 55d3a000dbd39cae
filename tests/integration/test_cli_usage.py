"""Usage errors of every command print click's usage line and exit 2, never a traceback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import typer

from jobyard.cli import exitcodes
from jobyard.cli.main import app, main


def _commands(group: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    for name, command in getattr(group, "commands", {}).items():
        if getattr(command, "hidden", False):
            continue
        if hasattr(command, "commands"):
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name), command


def _required_arguments(command: Any) -> list[str]:
    return [p.name for p in command.params if p.param_type_name == "argument" and p.required]


COMMANDS = list(_commands(typer.main.get_command(app)))
WITH_ARGUMENTS = [(path, cmd) for path, cmd in COMMANDS if _required_arguments(cmd)]


def _run(args: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    with pytest.raises(SystemExit) as exited:
        main(args)
    captured = capsys.readouterr()
    return int(exited.value.code or 0), captured.out + captured.err


def test_the_cli_has_commands_with_arguments() -> None:
    assert len(WITH_ARGUMENTS) >= 5, [p for p, _ in COMMANDS]


@pytest.mark.parametrize(
    ("path", "command"), WITH_ARGUMENTS, ids=lambda v: " ".join(v) if isinstance(v, tuple) else ""
)
def test_missing_argument_is_a_usage_error(
    path: tuple[str, ...], command: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    del command
    code, output = _run(list(path), capsys)
    assert code == exitcodes.USAGE, output
    assert f"Usage: jobyard {' '.join(path)}" in output
    assert "Missing argument" in output
    assert "Traceback" not in output and "unexpected" not in output


def test_unknown_command_and_option(capsys: pytest.CaptureFixture[str]) -> None:
    code, output = _run(["nosuch"], capsys)
    assert code == exitcodes.USAGE and "No such command 'nosuch'" in output
    code, output = _run(["jobs", "ls", "--bogus"], capsys)
    assert code == exitcodes.USAGE and "No such option" in output
    code, _ = _run(["--help"], capsys)
    assert code == exitcodes.OK


def test_credentials_are_masked_and_causes_take_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "jobyard.toml"
    config.write_text(
        'yard = "jobyard.packs.demo:yard"\n'
        'database_url = "postgresql://app:hunter2@127.0.0.1:1/jobs"\n'
        'events_url = "redis://:pw-for-events@127.0.0.1:1/0"\n'
        "[pools.general]\n[pools.media]\n"
    )
    code, output = _run(["--config", str(config), "config", "show"], capsys)
    assert code == exitcodes.OK
    assert "hunter2" not in output and "pw-for-events" not in output
    assert "app:***@127.0.0.1:1/jobs" in output
    code, output = _run(["--config", str(config), "jobs", "ls"], capsys)
    assert code == exitcodes.UNAVAILABLE and "hunter2" not in output
    assert output.count("Connection refused") == 1, output
    monkeypatch.setenv("JOBYARD_AUTH__BOOTSTRAP_ADMIN_KEY", "not-a-key-but-a-secret")
    code, output = _run(["--config", str(config), "config", "show"], capsys)
    assert code == exitcodes.USAGE and "not-a-key-but-a-secret" not in output
    assert "auth.bootstrap_admin_key: must be 'jy_'" in output
    assert "errors.pydantic.dev" not in output and len(output.strip().splitlines()) == 2
