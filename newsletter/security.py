"""Security headers on every response: one after_request, one place to read the policy."""
from __future__ import annotations

from flask import Flask, Response, request

from newsletter.core.config import settings
from newsletter.core.logredact import redact
from newsletter.web import embed_origins

# Scripts only from our own files (static/js/), never inline; styles may be inline (mail HTML and a few
# style attributes); images from here, data: URLs (the QR code) and https (pictures in an issue's preview).
_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self' 'unsafe-inline'",
    "img-src": "'self' data: https:",
    "object-src": "'none'",
    "base-uri": "'none'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}
# Mail HTML shown in the admin's preview frames: no script at all, a sandbox, framed by our own pages only.
MAIL_PREVIEW_POLICY = ("default-src 'none'; style-src 'unsafe-inline'; img-src data: https:; "
                       "base-uri 'none'; form-action 'none'; frame-ancestors 'self'; sandbox")
MAIL_PREVIEW_ENDPOINTS = {"admin.issue_email", "admin.issue_preview"}
HSTS = "max-age=31536000; includeSubDomains"


def content_security_policy(frame_ancestors: str = "'none'") -> str:
    return "; ".join(f"{name} {value}" for name, value in {**_POLICY, "frame-ancestors": frame_ancestors}.items())


def is_token_page() -> bool:
    """True when this request's URL carries a token of a token route (web.token_route) or a token query
    parameter, whatever the answer (an error page too): never cached, never sent on as a Referer."""
    return redact(request.full_path) != request.full_path


def set_security_headers(response: Response) -> Response:
    """Add the headers every response carries (see docs/security.md)."""
    headers = response.headers
    headers.setdefault("X-Content-Type-Options", "nosniff")
    if request.endpoint in MAIL_PREVIEW_ENDPOINTS:
        headers["Content-Security-Policy"] = MAIL_PREVIEW_POLICY
        headers["X-Frame-Options"] = "SAMEORIGIN"
    elif request.path.startswith("/embed/"):
        # The configured websites may frame the embed forms (web.allow_embedding); no X-Frame-Options here.
        headers["Content-Security-Policy"] = content_security_policy(" ".join(["'self'", *embed_origins()]))
        headers.pop("X-Frame-Options", None)
    else:
        headers["Content-Security-Policy"] = content_security_policy()
        headers["X-Frame-Options"] = "DENY"
    token_page = is_token_page()
    headers["Referrer-Policy"] = "no-referrer" if token_page else "strict-origin-when-cross-origin"
    if token_page or request.blueprint == "admin":
        headers["Cache-Control"] = "no-store"
        headers.pop("Expires", None)
    if settings().app_env == "production":
        headers.setdefault("Strict-Transport-Security", HSTS)
    return response


def init_app(app: Flask) -> None:
    app.after_request(set_security_headers)
