"""The event stream's cookie check compares scheme, host and port."""

from __future__ import annotations

from jobyard.api.routes.events import same_origin


def test_scheme_host_and_port_must_all_match() -> None:
    assert same_origin("http://dash.example:8000", "dash.example:8000", secure=False)
    assert same_origin("http://dash.example", "dash.example:80", secure=False)
    assert same_origin("https://dash.example", "dash.example", secure=True)
    assert not same_origin("https://dash.example:8000", "dash.example:8000", secure=False)
    assert not same_origin("http://dash.example:8001", "dash.example:8000", secure=False)
    assert not same_origin("http://evil.example:8000", "dash.example:8000", secure=False)
    assert not same_origin("ftp://dash.example:8000", "dash.example:8000", secure=False)
    assert not same_origin("", "dash.example", secure=False)
    assert not same_origin("http://dash.example:99999", "dash.example", secure=False)
