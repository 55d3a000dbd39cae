"""Credentials are masked wherever settings are shown."""

from __future__ import annotations

from jobyard.redaction import MASK, is_secret_name, mask, redact_url


def test_urls_keep_everything_but_the_password() -> None:
    assert redact_url("postgresql://app:s3cret@db:5432/jobs") == "postgresql://app:***@db:5432/jobs"
    assert redact_url("redis://:pw@cache:6379/0") == "redis://:***@cache:6379/0"
    assert redact_url("amqp://guest:p@ss@rabbit//") == "amqp://guest:***@rabbit//"
    assert redact_url("redis://cache:6379/0") == "redis://cache:6379/0"


def test_secret_names_show_only_that_they_are_set() -> None:
    assert is_secret_name("auth.bootstrap_admin_key") and is_secret_name("s3.secret")
    assert not is_secret_name("worker.kombu_ack_fix") and not is_secret_name("pools.keys_pool")
    assert mask("auth.bootstrap_admin_key", "jy_" + "x" * 40) == MASK
    assert mask("auth.bootstrap_admin_key", None) is None
    assert mask("database_url", "postgresql://a:b@h/d") == "postgresql://a:***@h/d"
    assert mask("web.port", 8000) == 8000
