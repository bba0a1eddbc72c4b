"""Small request helpers shared by the blueprints."""
from __future__ import annotations

import functools
import logging
import re
from typing import Any, Callable

from flask import (
    Blueprint,
    Request,
    Response,
    after_this_request,
    g,
    render_template,
    request,
)
from sqlalchemy.exc import InterfaceError, OperationalError
from werkzeug.routing import IntegerConverter
from werkzeug.utils import cached_property

from newsletter.accounts import users
from newsletter.core import logredact, tokens
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.mail import outgoing
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
    raw = settings().embed_allowed_origins.replace(",", " ").split()
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
        order = outgoing.hand_off_order(mail_ids)  # the database is read here: the response's close has no app
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


def token_route(bp: Blueprint, rule: str, *, read: Callable[[str], Any],
                refused: Callable[[tokens.BadToken], Any] | None = None, **options):
    """Route a view whose URL carries a token (an argument named like "token"); every such URL goes through here.

    Registered, a URL's token is read by `read` before the view runs (the view gets what it names, and
    the token): a forged, expired or revoked token gets `refused`'s page (refused_link's by default), never
    the view. The token is kept out of every log (core.logredact.add_rule), and the page is never stored by a
    cache nor sent on as a Referer (security.is_token_page asks core.logredact too).
    """
    (argument,) = logredact.token_arguments(rule)

    def decorate(view: Callable) -> Callable:
        @functools.wraps(view)
        def read_token_first(**values):
            try:
                return view(read(values[argument]), **values)
            except tokens.BadToken as exc:  # from `read`, or from a service that reads the token again
                rollback_quietly()
                return (refused or refused_link)(exc)

        read_token_first.is_token_route = True
        bp.record(lambda state: logredact.add_rule((state.url_prefix or "") + rule))
        return bp.route(rule, **options)(read_token_first)

    return decorate


def refused_status(error: tokens.BadToken) -> int:
    """410 for a link that expired or was used up, 404 for one that never was a link."""
    return 410 if error.expired or error.revoked else 404


def refused_link(error: tokens.BadToken):
    """The page for a link that no longer works."""
    page = render_template("public/link_refused.html", expired=error.expired, revoked=error.revoked)
    return page, refused_status(error)


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
