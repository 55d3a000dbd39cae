"""Dashboard login with an API key, and logout.

A login exchanges the key for a random session token in an HttpOnly, SameSite cookie; the key
itself never reaches the browser's storage. The form is CSRF-protected like every other.
"""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from fastapi.responses import HTMLResponse

from jobyard import access
from jobyard.api.auth import SESSION_COOKIE, client_of
from jobyard.api.deps import RuntimeDep
from jobyard.web.render import check_csrf, page, redirect

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no `//host`), so the login cannot redirect elsewhere."""
    if target and target.startswith("/") and not target.startswith("//"):
        return target
    return "/"


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, next: str | None = None) -> Response:
    """The login form (open mode needs none)."""
    if request.app.state.auth_mode == "open":
        return redirect(_safe_next(next))
    return page(request, "login.html", {"page": "login", "next": _safe_next(next), "error": None})


@router.post("/login")
async def login(request: Request, runtime: RuntimeDep) -> Response:
    """Check the key and start a session."""
    posted = await request.form()
    form = {key: value for key, value in posted.items() if isinstance(value, str)}
    check_csrf(request, form)
    target = _safe_next(form.get("next"))
    started = access.login(runtime, (form.get("key") or "").strip())
    if started is None:
        context = {"page": "login", "next": target, "error": "unknown or revoked key"}
        return page(request, "login.html", context, status_code=401)
    token, principal = started
    access.record(runtime, principal, "login", None, None, client_of(request))
    response = redirect(target)
    response.set_cookie(
        SESSION_COOKIE,
        token,
        max_age=int(runtime.settings.auth.session_ttl_s),
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.post("/logout")
async def logout(request: Request, runtime: RuntimeDep) -> Response:
    """End the session."""
    posted = await request.form()
    check_csrf(request, {key: value for key, value in posted.items() if isinstance(value, str)})
    token = request.cookies.get(SESSION_COOKIE)
    if token:
        access.logout(runtime, token)
    response = redirect("/login")
    response.delete_cookie(SESSION_COOKIE)
    return response
