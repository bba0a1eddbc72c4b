"""Small request helpers shared by the blueprints."""
from __future__ import annotations

import logging
import re
from typing import Callable

from flask import Request, Response, after_this_request, current_app, g, request
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property

from newsletter.accounts import users
from newsletter.core.extensions import db
from newsletter.mail import outbox
from newsletter.readers.subscriptions import Origin
from newsletter.tasks import enqueue, hand_off_mail

log = logging.getLogger(__name__)

# The database cannot be reached (down, restarting, out of connections): the visitor may try again.
DATABASE_UNAVAILABLE = (OperationalError, InterfaceError)


def session_user(session_id: str):
    """Flask-Login's user loader. Once the database has failed in this request, the error page
    treats the visitor as signed out instead of asking the database again (and failing again)."""
    if g.get("database_unavailable"):
        return None
    return users.load_session_user(session_id)


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

    While Redis is down the hand-off fails fast and is then skipped for a while (newsletter.tasks.enqueue);
    the sweeper sends the mail anyway.
    """
    if mail_ids:
        order = outbox.hand_off_order(mail_ids)  # the database is read here: the response's close has no app
        _after_response(lambda: hand_off_mail(order))


def hand_off_after_response(task, *args) -> None:
    """Hand what a form stored to a worker's task once the response has gone out (the sweeper does
    the work if Redis is down)."""
    _after_response(lambda: enqueue(task, *args))


def _after_response(hand_off: Callable[[], None]) -> None:
    @after_this_request
    def on_close(response: Response) -> Response:
        response.call_on_close(hand_off)
        return response


def rollback_quietly() -> None:
    """Roll back after a failure; with the database gone even that may fail, which changes nothing."""
    try:
        db.session.rollback()
    except DATABASE_UNAVAILABLE:
        log.warning("rollback failed: database unreachable")


class DatabaseIdConverter(IntegerConverter):
    """`<int:...>` in URLs: no row has an id above the database's integer range, so such a URL is a 404."""

    def __init__(self, map, *args, **kwargs) -> None:  # noqa: A002 - werkzeug's name
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


class FormRequest(Request):
    """Form fields and query values without NUL characters: nobody types one, and no database stores one."""

    def _strip_nul(self, values):
        pairs = list(values.items(multi=True))
        if not any("\x00" in key or "\x00" in value for key, value in pairs):
            return values
        return self.parameter_storage_class(
            [(key.replace("\x00", ""), value.replace("\x00", "")) for key, value in pairs]
        )

    def _load_form_data(self) -> None:
        super()._load_form_data()
        self.__dict__["form"] = self._strip_nul(self.__dict__["form"])

    @cached_property
    def args(self):
        return self._strip_nul(super().args)
