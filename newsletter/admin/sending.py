"""Admin: follow a sending issue (progress as JSON for the page's progress bar), pause, resume, cancel."""
from __future__ import annotations

from flask import abort, flash, jsonify, redirect, url_for

from newsletter.admin.blueprint import audit_action, bp
from newsletter.sending import engine, warmup
from newsletter.tasks import enqueue_batches


@bp.get("/issues/<int:issue_id>/sending/progress")
def issue_sending_progress(issue_id: int):
    """Sent, failed, pending, rate and time left; polled by static/js/issue-progress.js."""
    report = engine.progress(issue_id)
    if report is None:
        abort(404)
    response = jsonify(report.as_dict())
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/issues/<int:issue_id>/sending/pause")
def issue_sending_pause(issue_id: int):
    if engine.pause(issue_id):
        audit_action("issue_pause", f"issue #{issue_id}", commit=True)
        flash("Paused. Messages already on their way finish; resume whenever you are ready.")
    else:
        flash("Only an issue that is sending can be paused.")
    return redirect(url_for("admin.issue_edit", issue_id=issue_id))


@bp.post("/issues/<int:issue_id>/sending/resume")
def issue_sending_resume(issue_id: int):
    if engine.resume(issue_id):
        audit_action("issue_resume", f"issue #{issue_id}", commit=True)
        enqueue_batches(issue_id)
        flash("Sending again, from where it stopped. Nobody gets it twice.")
    else:
        flash("Only a paused issue can be resumed.")
    return redirect(url_for("admin.issue_edit", issue_id=issue_id))


@bp.post("/issues/<int:issue_id>/sending/cancel")
def issue_sending_cancel(issue_id: int):
    if engine.cancel(issue_id):
        audit_action("issue_cancel", f"issue #{issue_id}", commit=True)
        flash("Canceled. Readers who already got it keep it; nobody else will get it.")
    else:
        flash("Only a sending or paused issue can be canceled here.")
    return redirect(url_for("admin.issue_edit", issue_id=issue_id))


@bp.app_template_global("sending_progress")
def sending_progress(issue_id: int) -> engine.Progress | None:
    """The progress of an issue, for templates/admin/_issue_progress.html's first paint."""
    return engine.progress(issue_id)


@bp.app_template_global("sending_warmup")
def sending_warmup() -> warmup.WarmupDay | None:
    """Where the practice is on its warm-up plan today (None without a plan), for the progress card."""
    return warmup.today()
