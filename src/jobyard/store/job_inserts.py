"""Storing new jobs: the hot path of every submit, one row or a batch.

A lone submit is one statement (with its audit entry on PostgreSQL); a batch is a COPY on
PostgreSQL. Reading and changing stored jobs is `store.jobs`.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import JSON, Connection, Table, insert

from jobyard.store.models import audit_table, jobs_table


def insert_one(
    conn: Connection, row: Mapping[str, Any], audit_rows: Sequence[Mapping[str, Any]] = ()
) -> None:
    """Insert one new queued job and the audit entries stored with it (`insert_rows`)."""
    insert_rows(conn, [row], audit_rows)


def insert_rows(
    conn: Connection,
    rows: Sequence[Mapping[str, Any]],
    audit_rows: Sequence[Mapping[str, Any]] = (),
) -> None:
    """Insert a few new queued jobs (a submit, or a group of concurrent ones) and the audit
    entries stored with them.

    On PostgreSQL that is one statement of plain SQL (psycopg prepares it after a few uses):
    the jobs' INSERT in a data-modifying CTE, which always runs, so an autocommit connection
    stores them all in one round trip; building the same through SQLAlchemy's `values()` cost
    more than the database's work. It still goes through SQLAlchemy's connection, whose
    error wrapping and invalidation of a lost connection the callers rely on. Elsewhere the
    caller's transaction holds them together. Many rows: `insert_many`.
    """
    if conn.dialect.name != "postgresql":
        conn.execute(insert(jobs_table), list(rows))
        if audit_rows:
            conn.execute(insert(audit_table), list(audit_rows))
        return
    columns = tuple(rows[0])
    audit_columns = tuple(audit_rows[0]) if audit_rows else ()
    sql = _insert_rows_sql(columns, len(rows), audit_columns, len(audit_rows))
    params = [_pg_param(jobs_table, name, row[name]) for row in rows for name in columns]
    for entry in audit_rows:
        params += [_pg_param(audit_table, name, entry[name]) for name in audit_columns]
    conn.exec_driver_sql(sql, tuple(params))


@functools.lru_cache(maxsize=256)
def _insert_rows_sql(
    columns: tuple[str, ...], count: int, audit_columns: tuple[str, ...], audits: int
) -> str:
    jobs = f"INSERT INTO jobyard_jobs ({', '.join(columns)}) VALUES {_values(columns, count)}"
    if not audits:
        return jobs
    return (
        f"WITH new_jobs AS ({jobs}) INSERT INTO jobyard_audit ({', '.join(audit_columns)}) "
        f"VALUES {_values(audit_columns, audits)}"
    )


def _values(columns: tuple[str, ...], count: int) -> str:
    one = f"({', '.join(['%s'] * len(columns))})"
    return ", ".join([one] * count)


def _pg_param(table: Table, name: str, value: Any) -> Any:
    if value is not None and isinstance(table.c[name].type, JSON):
        return Jsonb(value)
    return value


def insert_many(conn: Connection, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert new queued jobs: COPY on PostgreSQL (the batch-submit hot path; parameter
    binding row by row cost more than the database's work), multi-row INSERTs elsewhere."""
    if not rows:
        return
    if conn.dialect.name != "postgresql" or len(rows) == 1:  # COPY costs more for one row
        for start in range(0, len(rows), 500):
            conn.execute(insert(jobs_table), list(rows[start : start + 500]))
        return
    columns = list(rows[0])
    json_columns = {name for name in columns if isinstance(jobs_table.c[name].type, JSON)}
    raw = conn.connection.driver_connection
    assert raw is not None
    names = ", ".join(columns)
    with raw.cursor() as cursor, cursor.copy(f"COPY jobyard_jobs ({names}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(
                [_json_text(row[name]) if name in json_columns else row[name] for name in columns]
            )


def _json_text(value: Any) -> str | None:
    return None if value is None else json.dumps(value, separators=(",", ":"))
