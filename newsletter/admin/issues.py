"""Admin: the issues list, import, the editor with its live preview, test sends and scheduling."""
from __future__ import annotations

from collections.abc import Callable

from flask import abort, flash, jsonify, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import select

from newsletter.accounts import practice
from newsletter.admin.blueprint import audit_action, bp
from newsletter.admin.forms import ImportForm, IssueForm, ScheduleForm, TestSendForm
from newsletter.core.extensions import db
from newsletter.mail.addresses import InvalidAddress
from newsletter.models import Issue
from newsletter.publishing import feeds, issues
from newsletter.readers import lists
from newsletter.tasks import dispatch_due_issues, enqueue
from newsletter.web import send_after_response


def _issue(issue_id: int) -> Issue:
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        abort(404)
    return issue


def _editor(issue: Issue, *, status: int = 200, form: IssueForm | None = None,
            test_form: TestSendForm | None = None, schedule_form: ScheduleForm | None = None):
    form = form or IssueForm(formdata=None, obj=issue)
    schedule_form = schedule_form or ScheduleForm(formdata=None)
    if schedule_form.send_at.data is None and issue.send_at:
        schedule_form.send_at.data = issues.local_datetime(issue.send_at)
    if not schedule_form.lists.data:
        schedule_form.lists.data = [row.slug for row in lists.lists_for_issue(issue.id)]
    return render_template(
        "admin/issue_edit.html",
        issue=issue,
        form=form,
        test_form=test_form or TestSendForm(formdata=None, to=current_user.email),
        schedule_form=schedule_form,
        editable=issues.is_editable(issue),
        audience=issues.audience_size(),
        newsletter_lists=lists.all_lists(),
        timezone=practice.timezone().key,
    ), status


@bp.get("/issues")
def issues_list():
    rows = db.session.scalars(select(Issue).order_by(Issue.created_at.desc(), Issue.id.desc())).all()
    return render_template("admin/issues.html", issues=rows, blog_feed=feeds.current())


@bp.get("/issues/new")
def issue_new():
    return render_template("admin/issue_new.html", form=ImportForm(formdata=None))


@bp.post("/issues/new")
def issue_new_import():
    form = ImportForm()
    if form.validate():
        source, filename = _uploaded_source(form)
        if source is not None:
            try:
                issue = issues.create_from_source(source, title=form.title.data or None, filename=filename,
                                                  source_format=form.source_format.data or None)
            except issues.IssueError as exc:
                db.session.rollback()
                form.source.errors.append(str(exc))
            else:
                db.session.commit()
                flash("Your article is a draft issue now. Check the preview, send yourself a test, then schedule it.")
                return redirect(url_for("admin.issue_edit", issue_id=issue.id))
    return render_template("admin/issue_new.html", form=form), 400


def _uploaded_source(form: ImportForm) -> tuple[str | None, str]:
    """The article from the uploaded file, else from the text box; errors go on the form."""
    upload = form.file.data
    if upload and getattr(upload, "filename", ""):
        try:
            return upload.read().decode("utf-8-sig"), upload.filename
        except UnicodeDecodeError:
            form.file.errors.append("That file isn't UTF-8 text. Save it as plain text (UTF-8) and try again.")
            return None, ""
    if not (form.source.data or "").strip():
        form.source.errors.append("Choose a file or paste the article.")
        return None, ""
    return form.source.data, ""


@bp.get("/issues/<int:issue_id>")
def issue_edit(issue_id: int):
    return _editor(_issue(issue_id))


@bp.post("/issues/<int:issue_id>")
def issue_save(issue_id: int):
    issue = _issue(issue_id)
    form = IssueForm()
    if not form.validate():
        return _editor(issue, status=400, form=form)
    try:
        issues.update(issue, form.content())
    except issues.IssueError as exc:
        db.session.rollback()
        form.title.errors.append(str(exc))
        return _editor(_issue(issue_id), status=400, form=form)
    db.session.commit()
    flash("Saved.")
    return redirect(url_for("admin.issue_edit", issue_id=issue.id))


@bp.post("/issues/<int:issue_id>/autosave")
def issue_autosave(issue_id: int):
    """Save the editor's content as she types (static/js/issue-editor.js); JSON, never a page."""
    issue = _issue(issue_id)
    form = IssueForm()
    if not form.validate():
        return jsonify(saved=False, error=" ".join(e for errors in form.errors.values() for e in errors)), 400
    try:
        issues.update(issue, form.content())
    except issues.IssueError as exc:
        db.session.rollback()
        return jsonify(saved=False, error=str(exc)), 409
    db.session.commit()
    return jsonify(saved=True, saved_at=practice.local_time(issue.updated_at, "%-I:%M %p"))


@bp.post("/issues/<int:issue_id>/preview")
def issue_preview(issue_id: int):
    """The mail as the editor's unsaved content would make it: the live preview."""
    issue = _issue(issue_id)
    form = IssueForm()
    if not form.validate():
        return "; ".join(error for errors in form.errors.values() for error in errors), 400
    try:
        return issues.preview(issue, form.content())
    except issues.IssueError as exc:
        return str(exc), 400


@bp.get("/issues/<int:issue_id>/email")
def issue_email(issue_id: int):
    """The saved mail, as a reader will see it (with a harmless unsubscribe link)."""
    return issues.preview(_issue(issue_id), None)


@bp.post("/issues/<int:issue_id>/test")
def issue_test(issue_id: int):
    issue = _issue(issue_id)
    form = TestSendForm()
    if form.validate():
        try:
            mail_id = issues.send_test(issue, form.to.data)
        except InvalidAddress as exc:
            db.session.rollback()
            form.to.errors.append(str(exc))
        else:
            db.session.commit()
            send_after_response([mail_id])
            flash(f"A test copy is on its way to {form.to.data.strip()}.")
            return redirect(url_for("admin.issue_edit", issue_id=issue.id))
    return _editor(issue, status=400, test_form=form)


@bp.post("/issues/<int:issue_id>/schedule")
def issue_schedule(issue_id: int):
    issue = _issue(issue_id)
    form = ScheduleForm()
    now = request.form.get("action") == "now"
    if form.validate() and (now or form.send_at.data):
        try:
            lists.choose_for_issue(issue.id, lists.by_slugs(form.lists.data))
            if now:
                issues.send_now(issue)
            else:
                issues.schedule(issue, practice.to_utc(form.send_at.data))
        except (issues.IssueError, lists.ListError) as exc:
            db.session.rollback()
            form.send_at.errors.append(str(exc))
        else:
            audit_action("issue_send" if now else "issue_schedule", f"#{issue.id} {issue.title}")
            db.session.commit()
            if now:
                enqueue(dispatch_due_issues)  # start at once rather than at the dispatcher's next round
            flash("Sending now: the first readers get it within a minute." if now else
                  f"Scheduled for {practice.local_time(issue.send_at)} ({practice.timezone().key}).")
            return redirect(url_for("admin.issue_edit", issue_id=issue.id))
    elif not form.send_at.errors:
        form.send_at.errors.append("Please choose a date and a time.")
    return _editor(_issue(issue_id), status=400, schedule_form=form)


@bp.post("/issues/<int:issue_id>/cancel")
def issue_cancel(issue_id: int):
    return _change(issue_id, issues.cancel, "Canceled. Nothing will be sent; you can still edit it and schedule it again.",
                   url_for("admin.issue_edit", issue_id=issue_id), audit="issue_cancel")


@bp.post("/issues/<int:issue_id>/duplicate")
def issue_duplicate(issue_id: int):
    copy = issues.duplicate(_issue(issue_id))
    db.session.commit()
    flash("This is a copy, saved as a draft. Readers will see the same headline; change it if you like.")
    return redirect(url_for("admin.issue_edit", issue_id=copy.id))


@bp.post("/issues/<int:issue_id>/delete")
def issue_delete(issue_id: int):
    title = _issue(issue_id).title
    return _change(issue_id, issues.delete_draft, f"“{title}” is deleted.", url_for("admin.issues_list"),
                   audit="issue_delete")


def _change(issue_id: int, change: Callable[[Issue], object], done: str, then: str, audit: str):
    """Apply `change` and commit, say `done` and go to `then`; if refused, the editor says why."""
    issue = _issue(issue_id)
    title = issue.title
    try:
        change(issue)
    except issues.IssueError as exc:
        db.session.rollback()
        flash(str(exc))
        return _editor(_issue(issue_id), status=400)
    audit_action(audit, f"#{issue_id} {title}")
    db.session.commit()
    flash(done)
    return redirect(then)
