"""Rendering for the dashboard: templates with their filters, CSRF tokens and flash messages.

CSRF uses the double-submit pattern: a random token in a cookie, repeated in every form (and
in htmx's `X-CSRF-Token` header); a cross-site page can make the browser send the cookie but
cannot read it to repeat it.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from jobyard.api.auth import CSRF_COOKIE, CSRF_HEADER
from jobyard.domain.roles import Role
from jobyard.errors import Forbidden
from jobyard.timefmt import iso_utc

WEB_DIR = Path(__file__).resolve().parent
CSRF_FIELD = "csrf_token"
FLASH_COOKIE = "jobyard_flash"

templates = Jinja2Templates(directory=WEB_DIR / "templates")


def _when(value: datetime | None) -> Markup:
    """A moment as `<time>`: ISO 8601 UTC with `Z` in the markup (and without script);
    `jobyard.js` shows it in the browser's local time, with the UTC form as its title."""
    if value is None:
        return Markup("")
    stamp = iso_utc(value, precise=False)
    return Markup('<time datetime="{0}" title="{0}">{0}</time>').format(stamp)


def _clock(value: datetime | None) -> Markup:
    """A moment of today as `<time>` showing only the time of day."""
    if value is None:
        return Markup("")
    stamp = iso_utc(value, precise=False)
    return Markup('<time datetime="{0}" data-clock title="{0}">{1}</time>').format(
        stamp, stamp[11:19]
    )


def _age(seconds: float | None) -> str:
    if not seconds:
        return "—"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m {whole % 60}s"
    return f"{whole // 3600}h {whole % 3600 // 60}m"


def _duration(job: Any) -> str:
    """How long the job's last attempt ran (so far, while it runs): `0.42s`, `3m 05s`."""
    started, finished = getattr(job, "started_at", None), getattr(job, "finished_at", None)
    if started is None:
        return ""
    end = finished or datetime.now(UTC)
    seconds = max((end - started).total_seconds(), 0.0)
    if seconds < 60:
        return f"{seconds:.2f}s"
    return _age(seconds)


def _iso(value: datetime | None) -> str:
    """A moment as plain text (for attributes): ISO 8601 UTC with `Z`."""
    return "" if value is None else iso_utc(value, precise=False)


templates.env.filters.update(when=_when, clock=_clock, age=_age, duration=_duration, iso=_iso)


def csrf_token(request: Request) -> str:
    """This browser's CSRF token (a new one when it has none yet)."""
    token = request.cookies.get(CSRF_COOKIE)
    if not token:
        token = request.state.__dict__.setdefault("new_csrf", secrets.token_urlsafe(24))
    return token


def check_csrf(request: Request, form: dict[str, Any]) -> None:
    """Refuse a form post whose token does not match the cookie.

    Raises:
        Forbidden: a missing or wrong token (a cross-site request, or cookies are off).
    """
    cookie = request.cookies.get(CSRF_COOKIE)
    sent = form.get(CSRF_FIELD) or request.headers.get(CSRF_HEADER)
    if not cookie or not sent or not secrets.compare_digest(str(cookie), str(sent)):
        raise Forbidden(
            "the form's CSRF token is missing or wrong: reload the page and submit again "
            "(cookies must be enabled)"
        )


def page(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> HTMLResponse:
    """Render a page (or fragment) with the token, flash messages and page name."""
    token = csrf_token(request)
    flash = request.cookies.get(FLASH_COOKIE)
    principal = getattr(request.state, "principal", None)
    response = templates.TemplateResponse(
        request,
        template,
        {
            "csrf_token": token,
            "flashes": [("info", flash)] if flash else [],
            "principal": principal,
            "can_operate": principal is not None and principal.role.allows(Role.OPERATOR),
            "is_admin": principal is not None and principal.role.allows(Role.ADMIN),
            "open_mode": request.app.state.auth_mode == "open",
            **context,
        },
        status_code=status_code,
    )
    if request.cookies.get(CSRF_COOKIE) != token:
        response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="strict")
    if flash:
        response.delete_cookie(FLASH_COOKIE)
    return response


def redirect(url: str, flash: str | None = None) -> RedirectResponse:
    """Back to a page after a form post (303), with a message shown once."""
    response = RedirectResponse(url, status_code=303)
    if flash:
        response.set_cookie(FLASH_COOKIE, flash[:300], max_age=30, samesite="strict")
    return response
