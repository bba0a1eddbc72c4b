"""Small request helpers shared by the blueprints."""
from __future__ import annotations

import re

from flask import Response, after_this_request, current_app, request

from newsletter.subscriptions import Origin
from worker.tasks import enqueue_mail


def origin(source: str = "site") -> Origin:
    """Where this request came from, for consent and audit records."""
    return Origin(
        source=source,
        ip=request.remote_addr or "",
        user_agent=(request.user_agent.string or "")[:400],
    )


_ORIGIN = re.compile(r"^https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?$")


def embed_origins() -> list[str]:
    """The well-formed origins in EMBED_ALLOWED_ORIGINS (comma or space separated); others are ignored."""
    raw = current_app.config["EMBED_ALLOWED_ORIGINS"].replace(",", " ").split()
    return [origin.rstrip("/") for origin in raw if _ORIGIN.match(origin.rstrip("/"))]


def allow_embedding(response: Response) -> Response:
    """Let this site and the configured origins, and no one else, show the page in an iframe."""
    response.headers["Content-Security-Policy"] = " ".join(["frame-ancestors 'self'", *embed_origins()])
    response.headers.pop("X-Frame-Options", None)
    return response


def send_after_response(mail_ids: list[int]) -> None:
    """Hand committed mail to a worker once the response has gone out.

    While Redis is down each hand-off waits out the client's connection retries (seconds); the
    person at the form should not wait for that, and the sweeper sends the mail anyway.
    """
    if not mail_ids:
        return

    @after_this_request
    def hand_off(response: Response) -> Response:
        response.call_on_close(lambda: enqueue_mail(mail_ids))
        return response
