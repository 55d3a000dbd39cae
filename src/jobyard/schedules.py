"""Operations on schedules: create, edit, pause, resume, delete, and the config sync.

One path for the API, the CLI and `[[schedules]]` in jobyard.toml. An edit recomputes the next
fire time from now, so it applies on the scheduler's next tick without a restart and never
causes an immediate extra run.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError
from sqlalchemy import Connection
from sqlalchemy.exc import IntegrityError

from jobyard.domain.schedules import ManagedBy, ScheduleSpec
from jobyard.domain.triggers import Trigger, jitter_offset
from jobyard.errors import (
    ConfigError,
    InvalidArgs,
    InvalidRequest,
    ManagedByConfig,
    ScheduleNameTaken,
    ScheduleNotFound,
)
from jobyard.store import schedules as store
from jobyard.store.schedules import ScheduleRecord

if TYPE_CHECKING:
    from jobyard.app import Yard
    from jobyard.config import Settings
    from jobyard.runtime import Runtime

log = logging.getLogger(__name__)

#: Fields that decide when a schedule fires; changing one recomputes the next fire time.
TRIGGER_FIELDS = frozenset({"cron", "timezone", "interval_s", "jitter_s"})
SPEC_FIELDS = tuple(ScheduleSpec.model_fields)


def check_job(yard: Yard, spec: ScheduleSpec) -> dict[str, Any]:
    """The schedule's args validated against its job type; the normalised args.

    Raises:
        UnknownJobType: the type is not registered (field `type`).
        InvalidArgs: the args fail the job type's schema (fields `args.*`).
    """
    definition = yard.definition(spec.type)
    try:
        return definition.validate_args(spec.args)
    except InvalidArgs as exc:
        errors = [{**e, "field": f"args.{e['field']}"} for e in exc.details.get("errors", [])]
        fields = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidArgs(
            f"args do not match the schema of job type '{spec.type}': {fields}", errors=errors
        ) from None


def create(
    runtime: Runtime, spec: ScheduleSpec, *, managed_by: ManagedBy = ManagedBy.API
) -> ScheduleRecord:
    """Validate and store a new schedule.

    Raises:
        InvalidRequest: unknown job type or args failing its schema.
        ScheduleNameTaken: the name is in use.
    """
    args = check_job(runtime.yard, spec)
    now = runtime.clock()
    try:
        with runtime.db.write() as conn:
            if store.fetch_by_name(conn, spec.name) is not None:
                raise _name_taken(spec.name)
            return store.insert_one(conn, new_row(spec, args, managed_by, now))
    except IntegrityError as exc:
        raise _name_taken(spec.name) from exc


def new_row(
    spec: ScheduleSpec, args: dict[str, Any], managed_by: ManagedBy, now: datetime
) -> dict[str, Any]:
    """The `jobyard_schedules` row of a new schedule."""
    schedule_id = uuid.uuid4()
    row = {
        **_spec_values(spec, args),
        "id": schedule_id,
        "managed_by": managed_by.value,
        "anchor_at": now,
        "created_at": now,
        "updated_at": now,
    }
    row.update(
        next_times(
            schedule_id, Trigger(spec.cron, spec.timezone, spec.interval_s, now), spec.jitter_s, now
        )
    )
    return row


def next_times(
    schedule_id: uuid.UUID, trigger: Trigger, jitter_s: float, after: datetime
) -> dict[str, datetime]:
    """`next_fire_at` (the planned time) and `next_due_at` (with this fire's jitter)."""
    fire = trigger.next_after(after)
    return {
        "next_fire_at": fire,
        "next_due_at": fire + jitter_offset(str(schedule_id), fire, jitter_s),
    }


def update(
    runtime: Runtime,
    ref: str,
    changes: Mapping[str, Any],
    *,
    managed_by: ManagedBy = ManagedBy.API,
) -> ScheduleRecord:
    """Apply a partial edit; the whole result is validated again before anything is saved.

    Raises:
        ScheduleNotFound: no such schedule.
        ManagedByConfig: a definition edit of a config-managed schedule through the API.
        InvalidRequest: the edited schedule is invalid (naming the field).
    """
    now = runtime.clock()
    with runtime.db.write() as conn:
        current = resolve(conn, ref)
        if (
            managed_by is ManagedBy.API
            and current.managed_by is ManagedBy.CONFIG
            and set(changes) - {"paused"}
        ):
            raise ManagedByConfig(
                f"schedule '{current.name}' is declared in jobyard.toml: edit it there "
                "(pause and resume work here)",
                name=current.name,
            )
        spec = parse_spec({**spec_of(current).model_dump(), **_switch_trigger(changes)})
        args = check_job(runtime.yard, spec)
        if spec.name != current.name and store.fetch_by_name(conn, spec.name) is not None:
            raise _name_taken(spec.name)
        values = _changed_values(current, spec, args, now)
        if not values:
            return current
        values["updated_at"] = now
        updated = store.update_one(conn, current.id, values)
    if updated is None:
        raise ScheduleNotFound(f"no schedule '{ref}'", ref=ref)
    return updated


def pause(runtime: Runtime, ref: str) -> ScheduleRecord:
    """Stop firing until resumed."""
    return update(runtime, ref, {"paused": True})


def resume(runtime: Runtime, ref: str) -> ScheduleRecord:
    """Fire again from the next fire time after now (what was missed while paused is skipped)."""
    return update(runtime, ref, {"paused": False})


def delete(runtime: Runtime, ref: str) -> ScheduleRecord:
    """Delete a schedule; the jobs it fired stay, with its id.

    Raises:
        ScheduleNotFound: no such schedule.
        ManagedByConfig: it is declared in jobyard.toml.
    """
    with runtime.db.write() as conn:
        current = resolve(conn, ref)
        if current.managed_by is ManagedBy.CONFIG:
            raise ManagedByConfig(
                f"schedule '{current.name}' is declared in jobyard.toml: remove it there",
                name=current.name,
            )
        store.delete_one(conn, current.id)
    return current


def get(runtime: Runtime, ref: str) -> ScheduleRecord:
    """One schedule by id or name."""
    with runtime.db.read() as conn:
        return resolve(conn, ref)


def resolve(conn: Connection, ref: str) -> ScheduleRecord:
    """A schedule by id (a UUID) or by name.

    Raises:
        ScheduleNotFound: neither matches.
    """
    found: ScheduleRecord | None = None
    try:
        found = store.fetch(conn, uuid.UUID(ref))
    except ValueError:
        pass
    if found is None:
        found = store.fetch_by_name(conn, ref)
    if found is None:
        raise ScheduleNotFound(f"no schedule with id or name '{ref}'", ref=ref)
    return found


def spec_of(record: ScheduleRecord) -> ScheduleSpec:
    """The declaration a stored schedule was made from."""
    return ScheduleSpec.model_validate({name: getattr(record, name) for name in SPEC_FIELDS})


def check_config(settings: Settings, yard: Yard) -> None:
    """Fail at start when a `[[schedules]]` entry names an unknown type or has invalid args.

    Raises:
        ConfigError: naming `schedules[i].type` or `schedules[i].args.FIELD`.
    """
    for index, spec in enumerate(settings.schedules):
        try:
            check_job(yard, spec)
        except InvalidArgs as exc:
            fields = "; ".join(
                f"schedules[{index}].{e['field']}: {e['message']}"
                for e in exc.details.get("errors", [])
            )
            raise ConfigError(f"schedule '{spec.name}' has invalid args: {fields}") from exc
        except InvalidRequest as exc:
            raise ConfigError(f"schedules[{index}].type: {exc.message}") from exc


def sync_config(runtime: Runtime) -> int:
    """Make the config-managed schedules in the database match `[[schedules]]`.

    New entries are created, changed ones updated (the next fire time is kept unless the
    trigger changed), removed ones deleted. A schedule of the same name made through the API
    is taken over by the config. Returns how many schedules changed.
    """
    now = runtime.clock()
    changed = 0
    declared = {spec.name: spec for spec in runtime.settings.schedules}
    with runtime.db.write() as conn:
        for record in store.all_schedules(conn):
            if record.managed_by is ManagedBy.CONFIG and record.name not in declared:
                store.delete_one(conn, record.id)
                changed += 1
        for spec in declared.values():
            changed += _sync_one(runtime, conn, spec, now)
    return changed


def _sync_one(runtime: Runtime, conn: Connection, spec: ScheduleSpec, now: datetime) -> int:
    args = check_job(runtime.yard, spec)
    current = store.fetch_by_name(conn, spec.name)
    if current is None:
        store.insert_one(conn, new_row(spec, args, ManagedBy.CONFIG, now))
        return 1
    values = _changed_values(current, spec, args, now)
    if current.managed_by is not ManagedBy.CONFIG:
        log.warning(
            "schedule %s was made through the API; jobyard.toml now manages it",
            spec.name,
            extra={"action": "schedule_sync"},
        )
        values["managed_by"] = ManagedBy.CONFIG.value
    if not values:
        return 0
    values["updated_at"] = now
    store.update_one(conn, current.id, values)
    return 1


def _changed_values(
    current: ScheduleRecord, spec: ScheduleSpec, args: dict[str, Any], now: datetime
) -> dict[str, Any]:
    wanted = _spec_values(spec, args)
    values = {key: value for key, value in wanted.items() if getattr(current, key) != value}
    retimed = bool(TRIGGER_FIELDS & set(values)) or (current.paused and not spec.paused)
    if retimed:
        anchor = now if "interval_s" in values else current.anchor_at
        values["anchor_at"] = anchor
        trigger = Trigger(spec.cron, spec.timezone, spec.interval_s, anchor)
        values.update(next_times(current.id, trigger, spec.jitter_s, now))
    return values


def _spec_values(spec: ScheduleSpec, args: dict[str, Any]) -> dict[str, Any]:
    values = spec.model_dump()
    values["args"] = args
    values["overlap"] = spec.overlap.value
    values["catchup"] = spec.catchup.value
    return values


def _switch_trigger(changes: Mapping[str, Any]) -> dict[str, Any]:
    """Setting `interval_s` on a cron schedule (or the reverse) replaces the other trigger."""
    switched = dict(changes)
    for given, other in (("cron", "interval_s"), ("interval_s", "cron")):
        if switched.get(given) is not None and other not in switched:
            switched[other] = None
    return switched


def parse_spec(values: Mapping[str, Any]) -> ScheduleSpec:
    """A validated spec from plain values.

    Raises:
        InvalidRequest: with one entry per invalid field.
    """
    try:
        return ScheduleSpec.model_validate(values)
    except ValidationError as exc:
        errors = [
            {
                "field": ".".join(str(p) for p in e["loc"]) or "(schedule)",
                "message": e["msg"].removeprefix("Value error, "),
                "type": e["type"],
            }
            for e in exc.errors()
        ]
        summary = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        raise InvalidRequest(f"the schedule is invalid: {summary}", errors=errors) from exc


def _name_taken(name: str) -> ScheduleNameTaken:
    return ScheduleNameTaken(
        f"a schedule named '{name}' exists already: choose another name or edit that one",
        name=name,
    )
