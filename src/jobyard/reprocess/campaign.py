"""One step of a re-run campaign: submit the next re-runs, then count what is left."""

from __future__ import annotations

from dataclasses import dataclass

from jobyard.dispatch import submit
from jobyard.errors import InvalidArgs, InvalidRequest
from jobyard.reprocess.selection import RerunSelection, merge_patch
from jobyard.runtime import Runtime
from jobyard.store import reruns
from jobyard.store.records import JobRecord

#: The most re-runs one step submits (one transaction).
MAX_STEP = 1000


@dataclass(frozen=True)
class RerunProgress:
    """Where a campaign stands after a step."""

    campaign: str
    matched: int
    done: int
    submitted: list[JobRecord]

    @property
    def remaining(self) -> int:
        return max(0, self.matched - self.done)


def rerun_step(
    runtime: Runtime,
    selection: RerunSelection,
    *,
    limit: int,
    submitted_by: str | None,
    priority: int | None = None,
) -> RerunProgress:
    """Submit up to `limit` re-runs of the campaign's next originals, in one transaction.

    Raises:
        UnknownJobType: the selected type is not declared.
        InvalidRequest: the patched args of an original no longer validate (nothing of this
            step is submitted); names the original.
    """
    runtime.yard.definition(selection.type)
    limit = max(1, min(limit, MAX_STEP))
    with runtime.db.read() as conn:
        originals = reruns.pending(conn, selection, limit)
    requests = [_request(runtime, selection, original, priority) for original in originals]
    submitted = []
    if requests:
        outcome = submit.submit_many(runtime, requests, submitted_by=submitted_by)
        submitted = [s.job for s in outcome if s.created]
    return _progress(runtime, selection, submitted)


def count(runtime: Runtime, selection: RerunSelection) -> RerunProgress:
    """The campaign's figures without submitting anything (a dry run)."""
    runtime.yard.definition(selection.type)
    return _progress(runtime, selection, [])


def _progress(
    runtime: Runtime, selection: RerunSelection, submitted: list[JobRecord]
) -> RerunProgress:
    with runtime.db.read() as conn:
        matched = reruns.count_matching(conn, selection)
        done = reruns.count_done(conn, selection)
    return RerunProgress(selection.campaign_id, matched, done, submitted)


def _request(
    runtime: Runtime, selection: RerunSelection, original: JobRecord, priority: int | None
) -> submit.JobRequest:
    args = merge_patch(original.args, selection.args_patch)
    try:
        runtime.yard.definition(original.type).validate_args(args)
    except InvalidArgs as exc:
        raise InvalidRequest(
            f"re-running job {original.id} with args_patch gives invalid args: {exc.message}",
            errors=exc.details.get("errors", []),
        ) from None
    return submit.JobRequest(
        original.type,
        args,
        priority,
        idempotency_key=f"{selection.key_prefix}{original.id}",
        rerun_of=original.id,
    )
