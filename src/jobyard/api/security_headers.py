"""Security headers on every HTTP response, as a plain ASGI middleware (WebSockets untouched).

The dashboard loads only its own scripts, styles and sockets, so its Content-Security-Policy
allows `'self'` alone: an injected script or style cannot run, and no page can frame it.
Swagger UI at `/docs` starts from an inline script (FastAPI's page), so `/docs` alone goes
without the CSP; its assets come from the app itself. The other headers apply there too.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'; base-uri 'self'; form-action 'self'; "
    "object-src 'none'"
)
ALWAYS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"same-origin"),
    (b"x-frame-options", b"DENY"),
]
#: Swagger UI's page, which starts from an inline script.
WITHOUT_CSP = ("/docs",)


class SecurityHeaders:
    """Adds `ALWAYS` to every HTTP response, and the CSP outside the API docs."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = list(ALWAYS)
        if not str(scope.get("path", "")).startswith(WITHOUT_CSP):
            headers.append((b"content-security-policy", CONTENT_SECURITY_POLICY.encode()))

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                existing = {name.lower() for name, _ in message.get("headers", [])}
                extra = [(n, v) for n, v in headers if n not in existing]
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        await self.app(scope, receive, send_with_headers)
