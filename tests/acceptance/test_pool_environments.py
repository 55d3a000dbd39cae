"""Pools with their own virtualenvs (built with uv): the example's two pools pin incompatible
versions of `tabulate`, and both succeed in one `jobyard up` while this environment has none."""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import sys
from functools import partial
from pathlib import Path

from tests.acceptance.test_up_demo import _alive_children, _ready, _submit, _terminal
from tests.factories import ROOT, wait_for
from tests.services import free_port

EXAMPLE = ROOT / "examples" / "pool-environments"
ROWS: dict[str, object] = {"rows": [["pool", "env"], ["a", "1"]]}


def _project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    shutil.copytree(EXAMPLE, project)
    return project


def _jobyard(cwd: Path, *args: str, timeout_s: float = 240) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")}
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def _environments(project: Path) -> list[Path]:
    return sorted(p for p in (project / ".jobyard" / "envs").iterdir() if p.is_dir())


def test_two_pools_with_conflicting_pins_run_in_one_up(tmp_path: Path) -> None:
    assert importlib.util.find_spec("tabulate") is None  # the main environment has none
    project = _project(tmp_path)
    # Two builds at once: the lock makes one build and the other wait for it.
    builders = [
        subprocess.Popen(
            [sys.executable, "-m", "jobyard", "pools", "build"],
            cwd=project,
            env={k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")},
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [builder.communicate(timeout=300)[0] for builder in builders]
    assert [b.returncode for b in builders] == [0, 0], outputs
    built = _environments(project)
    assert [p.name.split("-")[0] for p in built] == ["legacy", "modern"], built
    marks = {p: (p / ".jobyard-env-complete").stat().st_mtime_ns for p in built}

    again = _jobyard(project, "pools", "build")
    assert again.returncode == 0 and again.stdout.count("up to date") == 2, again.stdout
    assert {p: (p / ".jobyard-env-complete").stat().st_mtime_ns for p in built} == marks

    port = free_port()
    with open(tmp_path / "up.log", "wb") as log:
        up = subprocess.Popen(
            [sys.executable, "-m", "jobyard", "up", "--port", str(port)],
            cwd=project,
            env={k: v for k, v in os.environ.items() if not k.startswith("JOBYARD_")},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        wait_for(lambda: _ready(base), timeout_s=90, what="jobyard up to serve /readyz")
        ids = {
            "legacy.report": _submit(base, "legacy.report", ROWS),
            "modern.render": _submit(base, "modern.render", ROWS),
        }
        done = {
            name: wait_for(partial(_terminal, base, job_id), timeout_s=60, what=name)
            for name, job_id in ids.items()
        }
    finally:
        up.send_signal(signal.SIGINT)
        code = up.wait(60)
    output = (tmp_path / "up.log").read_text(errors="replace")
    assert code == 0, output[-3000:]
    assert {name: job["state"] for name, job in done.items()} == dict.fromkeys(ids, "succeeded")
    assert done["legacy.report"]["result"]["tabulate"] == "0.8.10"  # type: ignore[index]
    assert done["modern.render"]["result"]["tabulate"] == "0.9.0"  # type: ignore[index]
    assert not _alive_children(project)

    # A changed requirements file is a new environment; the old one is left as it was.
    (project / "requirements-modern.txt").write_text("tabulate==0.8.9\n", encoding="utf-8")
    rebuilt = _jobyard(project, "pools", "build", "modern")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert len(_environments(project)) == 3


def test_bad_requirements_are_one_line_naming_the_pool_and_nothing_starts(tmp_path: Path) -> None:
    project = _project(tmp_path)
    (project / "requirements-legacy.txt").write_text("tabulate==99.0\n", encoding="utf-8")
    unresolvable = _jobyard(project, "up", "--port", str(free_port()))
    assert unresolvable.returncode == 2, unresolvable.stdout + unresolvable.stderr
    lines = unresolvable.stderr.strip().splitlines()
    assert lines[0].startswith("error: pool 'legacy': cannot build its environment from"), lines
    assert "tabulate==99.0" in lines[0] and len(lines) == 1, lines
    assert "jobyard is up" not in unresolvable.stdout
    assert not _alive_children(project)

    (project / "requirements-legacy.txt").unlink()
    missing = _jobyard(project, "pools", "build")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "error: pool 'legacy': cannot read its requirements file "
        f"{project / 'requirements-legacy.txt'}: No such file or directory"
    )


def test_a_module_level_import_of_a_pool_library_names_the_pool(tmp_path: Path) -> None:
    project = _project(tmp_path)
    jobs = project / "jobs.py"
    source = jobs.read_text(encoding="utf-8")
    jobs.write_text(
        source.replace(
            "from jobyard import Yard\n", "import tabulate\n\nfrom jobyard import Yard\n"
        ),
        encoding="utf-8",
    )
    result = _jobyard(project, "web", "--port", str(free_port()))
    assert result.returncode == 2
    first = result.stderr.strip().splitlines()[0]
    assert first == (
        "error: job module 'jobs' imports 'tabulate' at module level, but 'tabulate' is only "
        "in the environment of pools 'legacy' (requirements-legacy.txt), 'modern' "
        "(requirements-modern.txt): import it inside the job function, so web, the scheduler "
        "and the other pools never need it"
    )
