"""Admin: follow a sending issue (progress as JSON for the page's progress bar), pause, resume, cancel."""
from __future__ import annotations

from typing import Callable

from flask import abort, flash, jsonify, redirect, url_for

from newsletter.admin.blueprint import audit_action, bp
from newsletter.core.extensions import db
from newsletter.sending import control
from newsletter.tasks import enqueue_batches


@bp.get("/issues/<int:issue_id>/sending/progress")
def issue_sending_progress(issue_id: int):
    """Sent, failed, pending, rate and time left; polled by static/js/issue-progress.js."""
    report = control.progress(issue_id)
    if report is None:
        abort(404)
    response = jsonify(report.as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/issues/<int:issue_id>/sending/pause")
def issue_sending_pause(issue_id: int):
    return _change_sending(issue_id, control.pause,
                           "Paused. Messages already on their way finish; resume whenever you are ready.",
                           "Only an issue that is sending can be paused.")


@bp.post("/issues/<int:issue_id>/sending/resume")
def issue_sending_resume(issue_id: int):
    return _change_sending(issue_id, control.resume, "Sending again, from where it stopped. Nobody gets it twice.",
                           "Only a paused issue can be resumed.", then=enqueue_batches)


@bp.post("/issues/<int:issue_id>/sending/cancel")
def issue_sending_cancel(issue_id: int):
    return _change_sending(issue_id, control.cancel,
                           "Canceled. Readers who already got it keep it; nobody else will get it.",
                           "Only a sending or paused issue can be canceled here.")


def _change_sending(issue_id: int, change: Callable[[int], bool], done: str, refused: str,
                    then: Callable[[int], object] | None = None):
    """Apply `change` (pause, resume, cancel), audited as issue_<change> and committed, then `then`; say how it went."""
    if change(issue_id):
        audit_action(f"issue_{change.__name__}", f"issue #{issue_id}")
        db.session.commit()
        if then:
            then(issue_id)
        flash(done)
    else:
        flash(refused)
    return redirect(url_for("admin.issue_edit", issue_id=issue_id))
