"""One way for every admin action that mails someone to ask first: the view calls `ask_first` once its
form is valid, and the same POST comes back from a confirmation page (no JavaScript needed) with
CONFIRM_FIELD set. Only then does the view change anything or queue mail."""
from __future__ import annotations

from flask import render_template, request

CONFIRM_FIELD = "confirmed"


def ask_first(question: str, back: str, detail: str = "", button: str = "Yes, send it") -> str | None:
    """The page that asks `question` before this POST goes ahead, or None once the person said yes.

    The page re-posts every field of the form (its words included) to the same address; `back` is
    where "No" leads, `detail` what will be sent, shown as it is."""
    if request.form.get(CONFIRM_FIELD) == "yes":
        return None
    fields = [(name, value) for name, value in request.form.items(multi=True) if name not in ("csrf_token", CONFIRM_FIELD)]
    return render_template("admin/confirm.html", question=question, detail=detail, button=button, back=back,
                           action=request.path, fields=fields, confirm_field=CONFIRM_FIELD)
