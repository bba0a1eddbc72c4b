"""The audit log page: what was done in the admin, by whom, from where."""
from __future__ import annotations

from flask import render_template, request

from newsletter.accounts import audit
from newsletter.admin.blueprint import bp


@bp.get("/audit")
def audit_log():
    number = request.args.get("page", 1, type=int)
    number = number if 1 <= number <= 100_000 else 1
    entries, more = audit.page(number)
    return render_template("admin/audit.html", entries=entries, number=number, more=more)
