"""`Runtime`: settings, the Yard, the database and the broker publisher, opened together.

Every process (web, worker, scheduler, CLI, `yard.submit`) opens one Runtime and closes it on
exit; nothing here exists at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime

from jobyard import schedules
from jobyard.app import Yard
from jobyard.clock import utcnow
from jobyard.config import Settings, load_settings
from jobyard.dispatch.broker import Publisher
from jobyard.dispatch.celery_publisher import CeleryPublisher
from jobyard.dispatch.sender import MessageSender
from jobyard.errors import ConfigError
from jobyard.events.bus import EventPublisher
from jobyard.events.factory import make_publisher
from jobyard.loader import load_yard_for
from jobyard.storage.location import Storage
from jobyard.store import schema_version
from jobyard.store.db import Database


@dataclass
class Runtime:
    """The resources one jobyard process works with."""

    settings: Settings
    yard: Yard
    db: Database
    publisher: Publisher
    events: EventPublisher
    storage: Storage
    #: Sends new jobs' messages after their commit (several to a message under a backlog).
    sender: MessageSender
    clock: Callable[[], datetime] = field(default=utcnow)

    @classmethod
    def open(
        cls,
        settings: Settings | None = None,
        *,
        yard: Yard | None = None,
        check_schema: bool = True,
    ) -> Runtime:
        """Validate the configuration against the Yard and the database schema.

        Args:
            settings: default `load_settings()`.
            yard: default the one named by `settings.yard`.
            check_schema: confirm the database is migrated (a forked worker child whose parent
                already checked skips it).
        """
        settings = settings if settings is not None else load_settings()
        if yard is None:
            yard = load_yard_for(settings)
        else:
            yard.declare_config_commands(settings)
            yard.declare_packs(settings)
        check_configuration(settings, yard)
        storage = Storage.of(settings)
        db = Database(settings.database)
        if check_schema:
            try:
                schema_version.require_current(db)
            except BaseException:
                db.close()
                raise
        batched = batch_sizes(yard)
        publisher = CeleryPublisher(settings, longest_timeout_s(yard), batched)
        events = make_publisher(settings.events, settings.queue_prefix)
        return cls(
            settings=settings,
            yard=yard,
            db=db,
            publisher=publisher,
            events=events,
            storage=storage,
            sender=MessageSender(publisher, db, settings, batched),
        )

    def close(self) -> None:
        """Send pending messages and events, then release connections."""
        self.sender.close()
        self.events.close()
        self.publisher.close()
        self.db.close()


def check_configuration(settings: Settings, yard: Yard) -> None:
    """Errors that need both the config and the code: undeclared pools, commands outside
    pod-per-job pools, schedules of unknown types."""
    yard.check_pools(settings)
    schedules.check_config(settings, yard)
    if settings.env == "prod" and settings.database_url is None:
        raise ConfigError(
            "env = 'prod' needs database_url: the embedded SQLite database is for one machine"
        )


def batch_sizes(yard: Yard) -> dict[str, int]:
    """The batched job types and their `max_size`."""
    return {name: job.batch.max_size for name, job in yard.jobs.items() if job.batch is not None}


def longest_timeout_s(yard: Yard) -> float:
    """The longest `timeout_s` of any job type (the broker's visibility timeout exceeds it)."""
    return max((job.timeout_s for job in yard.jobs.values()), default=3600.0)
