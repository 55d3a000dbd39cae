"""Integration fixtures: settings over a real backend, an API client, a process stack."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from jobyard.api.app import create_app
from jobyard.config import Settings
from jobyard.events.bus import channel_name
from tests import services
from tests.factories import Backend, Stack, make_settings


def _settings(backend: Backend, data_dir: Path) -> Iterator[Settings]:
    built = make_settings(backend, data_dir)
    yield built
    queues = [built.queue_for(pool) for pool in built.pools]
    if backend.broker_url.startswith("amqp"):
        events = channel_name(built.queue_prefix)
        services.delete_amqp_queues(backend.broker_url, queues, exchanges=[events])
    elif backend.broker_url.startswith("redis://"):
        services.delete_redis_queues(backend.broker_url, built.queue_prefix)


@pytest.fixture
def settings(backend: Backend, tmp_path: Path) -> Iterator[Settings]:
    """Settings on the backend; the test's queues are removed afterwards."""
    yield from _settings(backend, tmp_path / "data")


@pytest.fixture(scope="module")
def module_settings(
    module_backend: Backend, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Settings]:
    yield from _settings(module_backend, tmp_path_factory.mktemp("data"))


@pytest.fixture(scope="module")
def running(module_settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """Both pools' workers and the scheduler, shared by a module's tests on one backend."""
    stack = Stack(module_settings, tmp_path_factory.mktemp("logs"))
    try:
        stack.scheduler()
        stack.workers("general", "media", "bulk")
        yield stack
    finally:
        stack.close()


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    """The real app (lifespan included) over the backend, without workers."""
    with TestClient(create_app(settings), raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def stack(settings: Settings, tmp_path: Path) -> Iterator[Stack]:
    """A runtime plus helpers to start real worker and scheduler processes."""
    logs = tmp_path / "logs"
    logs.mkdir()
    running = Stack(settings, logs)
    try:
        yield running
    finally:
        running.close()
