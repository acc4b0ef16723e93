"""Bearer-token auth and security headers for the dashboard.

* Every route but `/healthz` and the static page needs `Authorization: Bearer <token>`;
  tokens are compared with `hmac.compare_digest`.
* Without a configured token, `ensure_token` generates one into `<data_dir>/dashboard.token`
  (mode 0600) at first start; the caller prints it once.
* The WebSocket authenticates with its first message (`ws.py`), never with a URL parameter.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from collections.abc import Awaitable, Callable
from pathlib import Path

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

__all__ = [
    "TOKEN_FILE",
    "bearer_token",
    "ensure_token",
    "is_loopback",
    "security_headers",
    "token_matches",
]

TOKEN_FILE = "dashboard.token"
_MIN_TOKEN_LENGTH = 16


def ensure_token(data_dir: Path | str | None, configured: str | None) -> tuple[str, bool]:
    """Return `(token, generated)`.

    A configured token wins (`generated` False). Otherwise the token stored in
    `<data_dir>/dashboard.token` is reused, or a new one is written there with mode 0600 and
    `generated` is True (the caller prints it once). Without a data dir, a fresh token is
    returned and only lives as long as the process.
    """
    if configured is not None and configured.strip():
        token = configured.strip()
        if len(token) < _MIN_TOKEN_LENGTH:
            raise ValueError(
                f"DASHBOARD_AUTH_TOKEN is too short ({len(token)} characters); "
                f"use at least {_MIN_TOKEN_LENGTH}"
            )
        return token, False
    if data_dir is None:
        return secrets.token_urlsafe(32), True
    directory = Path(data_dir)
    path = directory / TOKEN_FILE
    if path.exists():
        token = path.read_text(encoding="utf-8").strip()
        if len(token) >= _MIN_TOKEN_LENGTH:
            return token, False
    directory.mkdir(parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    # O_EXCL on a fresh temporary name, then rename: the token is never readable by others.
    tmp = directory / f".{TOKEN_FILE}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, (token + "\n").encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return token, True


def token_matches(expected: str, given: str | None) -> bool:
    """Constant-time comparison (False for a missing token).

    `given` is whatever a client sent, lone surrogates (`"\\ud800"` in JSON) included.
    """
    if not given:
        return False
    return hmac.compare_digest(
        expected.encode("utf-8", "surrogatepass"), given.encode("utf-8", "surrogatepass")
    )


def bearer_token(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if not header:
        return None
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


def is_loopback(host: str) -> bool:
    """True for 127.0.0.0/8, ::1 and `localhost`."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


#: Paths served without a token: liveness and the static login page and its assets.
PUBLIC_PATHS = frozenset({"/healthz", "/", "/index.html", "/favicon.ico"})
PUBLIC_PREFIXES = ("/static/",)


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def require_token(
    expected: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """HTTP middleware: 401 without a bearer token, 403 with a wrong one."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        if request.scope["type"] != "http" or is_public(request.url.path):
            return await call_next(request)
        given = bearer_token(request.headers.get("authorization"))
        if given is None:
            return JSONResponse(
                {"detail": "missing bearer token (Authorization: Bearer <token>)"},
                status_code=401,
                headers={"WWW-Authenticate": "Bearer"},
            )
        if not token_matches(expected, given):
            return JSONResponse({"detail": "invalid token"}, status_code=403)
        return await call_next(request)

    return middleware


def content_security_policy(extra_connect_src: tuple[str, ...] = ()) -> str:
    connect = " ".join(("'self'", *extra_connect_src))
    return (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        f"connect-src {connect}; font-src 'self'; base-uri 'none'; form-action 'self'; "
        "frame-ancestors 'none'"
    )


def security_headers(
    csp: str,
) -> Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]:
    """HTTP middleware adding CSP, nosniff, no-referrer and no-framing to every response."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        response = await call_next(request)
        headers = response.headers
        headers["Content-Security-Policy"] = csp
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers["X-Frame-Options"] = "DENY"
        headers["Cross-Origin-Opener-Policy"] = "same-origin"
        if request.url.path.startswith("/api/"):
            headers["Cache-Control"] = "no-store"
        return response

    return middleware
