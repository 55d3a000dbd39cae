"""Settings: sources, precedence and error messages that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobyard.config import load_settings
from jobyard.config_sources import describe
from jobyard.errors import ConfigError


def _error(tmp_path: Path, toml: str, **environ: str) -> str:
    path = tmp_path / "jobyard.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as caught:
        load_settings(path, environ=environ)
    return caught.value.message


def test_defaults_are_the_embedded_setup(tmp_path: Path) -> None:
    settings = load_settings(None, environ={}, data_dir=tmp_path)
    assert settings.database == f"sqlite:///{tmp_path / 'jobyard.db'}"
    assert settings.broker == f"redis+socket://{tmp_path / 'redis.sock'}"
    assert settings.embedded_broker and settings.broker_is_redis


def test_precedence_arguments_over_env_over_file(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.toml"
    path.write_text('queue_prefix = "file"\n[pools.media]\nconcurrency = 3\nprefetch = 2\n')
    settings = load_settings(
        path, environ={"JOBYARD_POOLS__MEDIA__CONCURRENCY": "5", "JOBYARD_QUEUE_PREFIX": "env"}
    )
    assert settings.pools["media"].concurrency == 5 and settings.pools["media"].prefetch == 2
    assert settings.queue_prefix == "env"
    assert load_settings(path, environ={}, queue_prefix="arg").queue_prefix == "arg"
    assert settings.queue_for("media") == "env.media"


def test_errors_name_the_dotted_path(tmp_path: Path) -> None:
    message = _error(tmp_path, "[pools.media]\nconcurrency = 0\ncelery_pool = 'gevent'\n")
    assert "pools.media.concurrency: must be ≥ 1 (got 0)" in message
    assert "pools.media.celery_pool:" in message and "gevent" in message
    assert "unknown key" in _error(tmp_path, "[pools.media]\nconcurency = 2\n")
    assert "resources.cpu" in _error(tmp_path, "[pools.gpu.resources]\ncpu = 'lots'\n")
    assert "min_replicas must be ≤ max_replicas" in _error(
        tmp_path, "[pools.gpu.autoscale]\nmin_replicas = 3\nmax_replicas = 2\n"
    )
    assert "DNS-1123" in _error(tmp_path, "[pools.Media_Pool]\n")
    assert "lease_renew_s must be < lease_s" in _error(
        tmp_path, "[worker]\nlease_s = 5\nlease_renew_s = 5\n"
    )


def test_urls_are_checked_and_normalised(tmp_path: Path) -> None:
    assert "unsupported URL scheme 'mysql'" in _error(tmp_path, "database_url = 'mysql://x/y'\n")
    assert "unsupported URL scheme 'kafka'" in _error(tmp_path, "broker_url = 'kafka://x'\n")
    settings = load_settings(None, environ={}, database_url="postgres://u@h/db")
    assert settings.database == "postgresql+psycopg://u@h/db"


def test_invalid_toml_and_missing_file(tmp_path: Path) -> None:
    assert "invalid TOML" in _error(tmp_path, "[pools\n")
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml", environ={})


def test_describe_names_each_source(tmp_path: Path) -> None:
    path = tmp_path / "jobyard.toml"
    path.write_text('yard = "a:b"\n[pools.general]\n')
    env = {"JOBYARD_QUEUE_PREFIX": "x"}
    rows = {key: source for key, _, source in describe(load_settings(path, environ=env), path, env)}
    assert rows["yard"] == f"file {path}"
    assert rows["queue_prefix"] == "env JOBYARD_QUEUE_PREFIX"
    assert rows["web.port"] == "default"
    assert rows["pools.general.concurrency"] == "default"  # the pool is declared, not the value
