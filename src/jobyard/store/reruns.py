"""The queries of a re-run campaign: its matching originals, and those still to re-run."""

from __future__ import annotations

from sqlalchemy import ColumnElement, Connection, and_, exists, func, select

from jobyard.reprocess.selection import RerunSelection
from jobyard.store.models import jobs_table
from jobyard.store.records import JobRecord

J = jobs_table.c


def _matching(selection: RerunSelection) -> list[ColumnElement[bool]]:
    where = [
        J.type == selection.type,
        J.state.in_([s.value for s in selection.states]),
        J.rerun_of.is_(None),
    ]
    if selection.since is not None:
        where.append(J.created_at >= selection.since)
    if selection.until is not None:
        where.append(J.created_at < selection.until)
    return where


def _rerun_in_campaign(selection: RerunSelection) -> ColumnElement[bool]:
    rerun = jobs_table.alias("rerun")
    return exists().where(
        rerun.c.rerun_of == J.id,
        rerun.c.idempotency_key.startswith(selection.key_prefix, autoescape=True),
    )


def count_matching(conn: Connection, selection: RerunSelection) -> int:
    """Originals the campaign selects."""
    query = select(func.count()).select_from(jobs_table).where(*_matching(selection))
    return int(conn.execute(query).scalar_one())


def count_done(conn: Connection, selection: RerunSelection) -> int:
    """Selected originals the campaign already re-ran."""
    query = (
        select(func.count())
        .select_from(jobs_table)
        .where(and_(*_matching(selection)), _rerun_in_campaign(selection))
    )
    return int(conn.execute(query).scalar_one())


def pending(conn: Connection, selection: RerunSelection, limit: int) -> list[JobRecord]:
    """The oldest selected originals not yet re-run in this campaign."""
    query = (
        select(jobs_table)
        .where(*_matching(selection), ~_rerun_in_campaign(selection))
        .order_by(J.id)
        .limit(limit)
    )
    return [JobRecord.from_row(row) for row in conn.execute(query).mappings()]
