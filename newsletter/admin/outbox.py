"""The development outbox: mail written to instance/outbox/ when no SMTP server is configured."""
from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

from flask import abort, render_template, request

from newsletter.admin.blueprint import bp
from newsletter.core.config import settings
from newsletter.mail.transports import OutboxTransport

PAGE_SIZE = 25
MAX_SEARCH = 200


@bp.get("/outbox")
def outbox():
    """The newest messages first, a page at a time; `q` keeps those whose recipient or subject has it."""
    query = request.args.get("q", "")[:MAX_SEARCH].strip()
    page = request.args.get("page", "1")
    page = max(int(page), 1) if page.isdigit() else 1
    messages = [_summary(path) for path in OutboxTransport(settings()).messages(limit=None)]
    if query:
        needle = query.casefold()
        messages = [m for m in messages if needle in f"{m['to']} {m['subject']}".casefold()]
    pages = max((len(messages) + PAGE_SIZE - 1) // PAGE_SIZE, 1)
    page = min(page, pages)
    return render_template("admin/outbox.html", messages=messages[(page - 1) * PAGE_SIZE:page * PAGE_SIZE],
                           total=len(messages), page=page, pages=pages, query=query,
                           smtp=bool(settings().smtp_host))


@bp.get("/outbox/<name>")
def outbox_message(name: str):
    path = OutboxTransport(settings()).message(name)
    if path is None:
        abort(404)
    message = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
    html = message.get_body(("html",))
    text = message.get_body(("plain",))
    return render_template(
        "admin/outbox_message.html",
        name=name,
        message=message,
        html=html.get_content() if html else None,
        text=text.get_content() if text else "",
    )


def _summary(path: Path) -> dict:
    with path.open("rb") as handle:
        headers = BytesParser(policy=policy.default).parse(handle, headersonly=True)
    return {"name": path.name, "to": str(headers["To"] or ""), "subject": str(headers["Subject"] or ""),
            "date": headers["Date"]}
