"""Admin: readers. The list pages by id (keyset), so page 1000 costs what page 1 costs."""
from __future__ import annotations

import csv
import io
import json
import time

from flask import Response, abort, current_app, flash, redirect, render_template, request, stream_with_context, url_for

from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import ReaderImportForm
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.models import Subscriber
from newsletter.models.readers import SUBSCRIBER_STATUSES
from newsletter.readers import csv_files, subscriptions
from newsletter.web import embed_origins, origin, send_after_response

PER_PAGE = 50
# Counting every reader costs a full pass over the table, so the counts shown are up to a minute old.
COUNTS_MAX_AGE = 60.0
# Asking a reader to confirm renders a mail (about 15 ms): a bigger file would outlast the web server's timeout.
IMPORT_MAX_ROWS = 1000


def _page_arg(name: str) -> int | None:
    value = request.args.get(name, "")
    return int(value) if value.isdigit() and len(value) < 19 else None


@bp.get("/readers")
def readers():
    query = " ".join("".join(ch for ch in request.args.get("q", "") if ch.isprintable()).split())[:200]
    status = request.args.get("status", "")
    status = status if status in SUBSCRIBER_STATUSES else ""
    rows, has_newer, has_older = subscriptions.search(query, status, after=_page_arg("after"),
                                                      before=_page_arg("before"), per_page=PER_PAGE)
    return render_template("admin/readers.html", rows=rows, query=query, status=status, statuses=SUBSCRIBER_STATUSES,
                           counts=_status_counts(), has_newer=has_newer, has_older=has_older)


def _status_counts() -> dict[str, int]:
    cached = current_app.extensions.get("reader_counts")
    if cached is None or time.monotonic() - cached[0] > COUNTS_MAX_AGE:
        cached = current_app.extensions["reader_counts"] = (time.monotonic(), subscriptions.status_counts())
    return cached[1]


def _forget_counts() -> None:
    current_app.extensions.pop("reader_counts", None)


def _reader(reader_id: int) -> Subscriber:
    return db.session.get(Subscriber, reader_id) or abort(404)


@bp.get("/readers/<int:reader_id>")
def reader_detail(reader_id: int):
    return render_template("admin/readers_detail.html", reader=_reader(reader_id))


@bp.get("/readers/<int:reader_id>/export.json")
def reader_export(reader_id: int):
    """Everything kept about one reader, as a JSON download (a data-access request)."""
    audit_action("reader_export", f"reader #{reader_id}")
    db.session.commit()
    body = json.dumps(subscriptions.reader_data(_reader(reader_id)), indent=2, ensure_ascii=False)
    return Response(body, mimetype="application/json",
                    headers={"Content-Disposition": f'attachment; filename="reader-{reader_id}.json"'})


@bp.post("/readers/<int:reader_id>/erase")
def reader_erase(reader_id: int):
    subscriptions.erase(_reader(reader_id), origin("admin"))
    audit_action("reader_erase", f"reader #{reader_id}")
    db.session.commit()
    _forget_counts()
    flash("The reader's data is erased. Their address is kept only as a hash, so it is never mailed again.")
    return redirect(url_for("admin.readers"))


@bp.get("/readers/import")
def readers_import():
    return _import_page()


def _import_page(form: ReaderImportForm | None = None, **context) -> str:
    """The import page: the form (blank unless it comes back with errors) and what the last import did."""
    return render_template("admin/readers_import.html", form=form or ReaderImportForm(formdata=None), **context)


@bp.post("/readers/import")
def readers_import_upload():
    form = ReaderImportForm()
    if not form.validate():
        return _import_page(form), 400
    filename = form.csv_file.data.filename or "a file"
    text = io.TextIOWrapper(form.csv_file.data.stream, encoding="utf-8-sig", newline="")
    roster = None
    try:
        result = csv_files.import_csv(text, form.consent.data, origin("import"), max_rows=IMPORT_MAX_ROWS,
                                      filename=filename, not_a_client_list=form.not_a_client_list.data)
    except csv_files.RosterSuspected as exc:
        roster = str(exc)
    except csv_files.InvalidImport as exc:
        form.csv_file.errors.append(str(exc))
    except (UnicodeDecodeError, csv.Error):
        form.csv_file.errors.append("That file isn't a readable CSV file. Please save it as CSV (UTF-8) and try again.")
    else:
        if request.form.get("preview"):
            db.session.rollback()  # what the file would do, nothing kept: the mail and readers vanish with it
            return _import_page(form, result=result, preview=True)
        audit_action("readers_import", f"{result.added} added from {filename[:200]} "
                                       f"({form.consent.data}{', ' + result.service if result.service else ''})")
        db.session.commit()
        send_after_response(result.mail_ids)
        _forget_counts()
        return _import_page(result=result)
    db.session.rollback()
    return _import_page(form, roster=roster), 400


@bp.get("/readers/export.csv")
def readers_export():
    audit_action("subscribers_export")
    db.session.commit()
    return Response(stream_with_context(csv_files.export_csv()), mimetype="text/csv",
                    headers={"Content-Disposition": 'attachment; filename="readers.csv"'})


@bp.get("/readers/embed")
def readers_embed():
    """The copy-paste snippet that puts the signup form on the practice's own website."""
    return render_template("admin/readers_embed.html", embed_url=settings().base_url + "/embed/subscribe",
                           origins=embed_origins())
