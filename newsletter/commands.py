"""The flask CLI of SPEC.md: `flask --app wsgi create-admin`, `issue ...`, `subscribers ...`."""
from __future__ import annotations

import csv
import os
from collections import Counter
from contextlib import contextmanager

import click
from flask import Flask
from flask.cli import AppGroup, with_appcontext

from newsletter import backup, doctor, heartbeats
from newsletter.accounts import audit, practice, users
from newsletter.core import crypto
from newsletter.core.config import settings
from newsletter.core.extensions import db
from newsletter.deliverability import bounces
from newsletter.inquiries import jobs, waitlist
from newsletter.mail import addresses, outgoing, suppression
from newsletter.models import Issue, NewsletterList, utcnow
from newsletter.models.users import ROLES
from newsletter.publishing import feeds, issues, series
from newsletter.readers import csv_files, digests, lists, preferences, subscriptions
from newsletter.sending import control, dispatcher, ledger, replies
from newsletter.tasks import enqueue_batches, enqueue_mail, sweep_outgoing_mail, write_ledger

CLI = "command line"  # where an action came from, in the audit log
issue_cli = AppGroup("issue", help="Import, send, test and follow issues.")
subscribers_cli = AppGroup("subscribers", help="Import, export and suppress readers.")
bounces_cli = AppGroup("bounces", help="Bounces and complaints that arrive by mail.")
replies_cli = AppGroup("replies", help="Readers' replies to issues, forwarded to be counted.")


@contextmanager
def _as_command_error(*errors: type[Exception]):
    """Turn a service's refusal (one of `errors`) into the command's error message."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("create-admin")
@click.argument("email")
@click.option("--role", type=click.Choice(ROLES), default=None,
              help="owner (everything; the default for a new person), coordinator, clinician or editor. "
                   "Without it a person who exists keeps their role.")
@click.option("--reset-2fa", "reset_2fa", is_flag=True,
              help="Also remove two-step sign-in (a lost phone): the admin sets it up again at the next sign-in.")
@with_appcontext
def create_admin(email: str, role: str | None, reset_2fa: bool) -> None:
    """Create a person of the practice, or reset their password (ADMIN_PASSWORD or a prompt); signs out every browser."""
    email = _address_or_fail(email)
    password = os.environ.get("ADMIN_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True
    )
    with _as_command_error(users.WeakPassword):
        user = users.set_admin(email, password, reset_second_factor=reset_2fa, role=role)
    db.session.flush()
    audit.record("password_reset", f"{user.email} ({user.role})", user.id, CLI)
    if reset_2fa:
        audit.record("second_factor_reset", user.email, user.id, CLI)
    db.session.commit()
    click.echo(f"{user.email} ({user.role}) can now sign in at /admin/login."
               + (" Two-step sign-in was removed." if reset_2fa else ""))


@subscribers_cli.command("import")
@click.argument("csv_file", type=click.File("r", encoding="utf-8-sig"))
@click.option("--consent", type=click.Choice([csv_files.IMPORT_ASK, csv_files.IMPORT_ELSEWHERE]), default=csv_files.IMPORT_ASK,
              show_default=True,
              help="ask: email each new reader to confirm; elsewhere: they already consented elsewhere (recorded).")
@click.option("--not-a-client-list", "not_a_client_list", is_flag=True,
              help="Import a file that looks like a client list (clinical columns, a roster's name): it is not one.")
def import_subscribers(csv_file, consent: str, not_a_client_list: bool) -> None:
    """Add readers from a CSV file: email,name, or an export from Mailchimp, Substack, Buttondown, Kit or listmonk."""
    with _as_command_error(csv_files.InvalidImport, UnicodeDecodeError, csv.Error):
        result = csv_files.import_csv(csv_file, consent, subscriptions.Origin(source="import", user_agent="flask cli"),
                                      filename=csv_file.name, not_a_client_list=not_a_client_list)
    audit.record("readers_import", f"{result.added} added from {csv_file.name[:200]} "
                                   f"({consent}{', ' + result.service if result.service else ''})", None, CLI)
    db.session.commit()
    enqueue_mail(result.mail_ids)
    for line, reason in result.invalid:
        click.echo(f"line {line}: {reason}", err=True)
    if result.service:
        click.echo(f"Read as a {result.service} export.")
    if result.dropped:
        click.echo(f"Columns not imported: {', '.join(result.dropped)}.")
    click.echo(f"{result.added} added, {result.existing} already known, {result.left} unsubscribed there (kept as "
               f"unsubscribed), {result.suppressed} suppressed, {len(result.invalid)} invalid; {result.with_history} "
               "with their opt-in time or IP from the file.")


@subscribers_cli.command("export")
def export_subscribers() -> None:
    """Print every reader as CSV."""
    audit.record("subscribers_export", "", None, CLI)
    db.session.commit()
    for chunk in csv_files.export_csv():
        click.echo(chunk, nl=False)


@subscribers_cli.command("suppress")
@click.argument("email")
@click.option("--reason", type=click.Choice(["bounced", "complained"]), required=True)
def suppress_subscriber(email: str, reason: str) -> None:
    """Never mail this address again."""
    address = _address_or_fail(email)
    suppression.suppress(address, reason, "flask cli")
    db.session.commit()
    click.echo(f"{address} is suppressed ({reason}).")


@issue_cli.command("import")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--title", default=None, help="The title, when the first line isn't it.")
def import_issue(path: str, title: str | None) -> None:
    """Make a draft issue of a plain-text or Markdown article; prints its id."""
    issue = _imported(path, title)
    db.session.commit()
    click.echo(issue.id)


def _imported(path: str, title: str | None = None) -> Issue:
    """A draft issue made of the article at PATH, or a ClickException saying why not."""
    try:
        with open(path, encoding="utf-8-sig") as handle:
            source = handle.read()
    except UnicodeDecodeError as exc:
        raise click.ClickException(f"{path} is not UTF-8 text.") from exc
    with _as_command_error(issues.IssueError):
        return issues.create_from_source(source, title=title, filename=os.path.basename(path))


@issue_cli.command("send")
@click.argument("issue_id", type=int)
@click.option("--at", "send_at", default=None, help="ISO-8601 time; without a zone, the practice's timezone.")
@click.option("--lists", "list_slugs", default="", help="Comma-separated list slugs (the default list when absent).")
def send_issue(issue_id: int, send_at: str | None, list_slugs: str) -> None:
    """Schedule the issue (now when --at is absent) to the given lists."""
    issue = _issue_or_fail(issue_id)
    with _as_command_error(issues.IssueError, lists.ListError):
        lists.choose_for_issue(issue.id, lists.by_slugs(list_slugs.split(",")))
        if send_at:
            issues.schedule(issue, issues.parse_local_time(send_at))
        else:
            issues.send_now(issue)
    audit.record("issue_schedule" if send_at else "issue_send", f"#{issue.id} {issue.title}", None, CLI)
    db.session.commit()
    click.echo(f"Issue {issue.id} scheduled for {practice.local_time(issue.send_at)} ({practice.timezone().key}).")


@issue_cli.command("test")
@click.argument("issue_id", type=int)
@click.option("--to", "to", required=True, help="Who gets the test copy.")
def test_issue(issue_id: int, to: str) -> None:
    """Send one test copy of the issue, now."""
    issue = _issue_or_fail(issue_id)
    to = _address_or_fail(to)
    mail_id = issues.send_test(issue, to)
    db.session.commit()
    outcome = outgoing.deliver(mail_id)
    click.echo(f"Test copy of issue {issue.id} to {to}: {outcome}.")


def _address_or_fail(raw: str) -> str:
    """The address under the product's one rule (mail.addresses), or the rule's message as the command's error."""
    with _as_command_error(addresses.InvalidAddress):
        return addresses.normalize(raw)


def _issue_or_fail(issue_id: int) -> Issue:
    issue = db.session.get(Issue, issue_id)
    if issue is None:
        raise click.ClickException(f"There is no issue {issue_id}.")
    return issue


@issue_cli.command("status")
@click.argument("issue_id", type=int)
def issue_status(issue_id: int) -> None:
    """Recipients, sent, failed and pending for an issue."""
    report = control.progress(issue_id)
    if report is None:
        raise click.ClickException(f"There is no issue {issue_id}.")
    click.echo(f"Issue {issue_id}: {report.status}")
    click.echo(f"recipients: {report.recipients}\nsent: {report.sent}\nfailed: {report.failed}\n"
               f"skipped: {report.skipped}\npending: {report.pending}")
    if report.pause_reason:
        click.echo(f"paused: {report.pause_reason}")


def _change_sending(issue_id: int, change, done: str, refused: str) -> None:
    """Apply `change` (pause, resume, cancel) and commit it with its audit entry, or refuse saying the status."""
    if not change(issue_id):
        report = control.progress(issue_id)
        raise click.ClickException(refused.format(status=report.status if report else "missing"))
    audit.record(f"issue_{change.__name__}", f"issue #{issue_id}", None, CLI)
    db.session.commit()
    click.echo(done)


@issue_cli.command("pause")
@click.argument("issue_id", type=int)
def issue_pause(issue_id: int) -> None:
    """Pause a sending issue; `issue resume` continues where it stopped."""
    _change_sending(issue_id, control.pause, f"Issue {issue_id} paused.",
                    "Only a sending issue can be paused (this one is {status}).")


@issue_cli.command("resume")
@click.argument("issue_id", type=int)
def issue_resume(issue_id: int) -> None:
    """Resume a paused issue from where it stopped."""
    _change_sending(issue_id, control.resume, f"Issue {issue_id} is sending again.",
                    "Only a paused issue can be resumed (this one is {status}).")
    enqueue_batches(issue_id)


@issue_cli.command("cancel")
@click.argument("issue_id", type=int)
def issue_cancel(issue_id: int) -> None:
    """Cancel a sending or paused issue: readers not yet mailed will not be."""
    _change_sending(issue_id, control.cancel, f"Issue {issue_id} canceled.",
                    "Only a sending or paused issue can be canceled (this one is {status}).")


def register(app: Flask) -> None:
    for command in (create_admin, issue_cli, subscribers_cli, bounces_cli, replies_cli, backup_database,
                    restore_database, run_doctor, lists_cli, series_cli, run_due, rotate_key):
        app.cli.add_command(command)


@click.command("doctor")
@with_appcontext
def run_doctor() -> None:
    """Check the settings and every running part, one line each; exits 1 if anything failed."""
    report = doctor.run(settings())
    for check in report:
        click.echo(str(check))
    if doctor.failed(report):
        raise SystemExit(1)


_KIND_WORDS = {"hard": "hard bounce", "soft": "soft bounce", "complaint": "spam complaint", "unsubscribe": "unsubscribe"}
_OUTCOME_WORDS = {"suppressed": "the address will not be mailed again", "counted": "counted (the address is "
                  "suppressed after a few)", "unsubscribed": "the reader is unsubscribed", "duplicate": "already "
                  "recorded before", "unknown": "it names no address we could use"}


@bounces_cli.command("ingest")
@click.argument("message", type=click.File("rb"), default="-")
def ingest_bounce(message) -> None:
    """Read one bounce (DSN) or complaint (ARF) message from MESSAGE or stdin and act on it."""
    try:  # read no more than one byte past the cap, however large the input: memory stays small
        results = bounces.ingest(message.read(bounces.MAX_REPORT_BYTES + 1))
    except bounces.UnreadableReport as exc:
        raise click.ClickException(f"Cannot read {message.name}: {exc}.") from exc
    db.session.commit()
    if not results:
        click.echo("Nothing to record: the report tells of no failed delivery and no complaint.")
        return
    click.echo("; ".join(f"{_KIND_WORDS[report.kind]}: {_OUTCOME_WORDS[outcome]}" for report, outcome in results) + ".")


@replies_cli.command("count")
@click.argument("message", type=click.File("rb"), default="-")
def count_reply(message) -> None:
    """Count one reader's reply to an issue (the reply, or her forward of it) from MESSAGE or stdin: which
    issue it answers is all that is kept."""
    try:  # read no more than one byte past the cap, however large the input
        counted = replies.count(message.read(replies.MAX_REPLY_BYTES + 1))
    except replies.NotAReply as exc:
        raise click.ClickException(f"Not counted: {exc}.") from exc
    db.session.commit()
    click.echo(f"A reply to \u201c{counted.issue.title}\u201d: "
               + ("counted." if counted.new else "counted before, not again."))


# -- backups (reliability)

ENCRYPTION_NOTE = ("Inquiries stay encrypted in the backup: keep INQUIRY_ENCRYPTION_KEY safe, and apart from the "
                   "backup. It is needed to read inquiries after a restore.")


@click.command("backup")
@click.argument("path", type=click.Path(dir_okay=False))
@with_appcontext
def backup_database(path: str) -> None:
    """Write the whole database to PATH (safe while the app runs)."""
    with _as_command_error(backup.BackupError):
        held = backup.backup(path)
    heartbeats.record(heartbeats.BACKUP)  # flask doctor reports the last backup's age
    db.session.commit()
    click.echo(f"Backup written to {path}: {held}.")
    click.echo(ENCRYPTION_NOTE)


@click.command("restore")
@click.argument("path", type=click.Path(dir_okay=False))
@click.option("--yes", "replace", is_flag=True, help="Replace a database that already holds data.")
@with_appcontext
def restore_database(path: str, replace: bool) -> None:
    """Replace the database with the backup at PATH, after checking the whole file."""
    with _as_command_error(backup.BackupError):
        held = backup.restore(path, replace=replace)
    click.echo(f"Restored from {path}: {held}.")
    click.echo(ENCRYPTION_NOTE)


# -- lists, welcome series and the scheduled jobs (readers, round two)

lists_cli = AppGroup("lists", help="Newsletters readers can choose.")
series_cli = AppGroup("series", help="Each list's welcome series.")


@lists_cli.command("add")
@click.argument("slug")
@click.option("--name", required=True, help="The name readers see.")
@click.option("--description", default="", help="One line readers see under the name.")
def add_list(slug: str, name: str, description: str) -> None:
    """A newsletter readers can choose (the signup form shows the choice once there are two)."""
    with _as_command_error(lists.ListError):
        row = lists.add(slug, name, description)
    audit.record("list_add", f"{row.slug} ({row.name})", None, CLI)
    db.session.commit()
    click.echo(f"List {row.slug} ({row.name}) added.")


def _list_or_fail(slug: str | None) -> NewsletterList:
    with _as_command_error(lists.ListError):
        return lists.by_slugs([slug] if slug else [])[0]


@series_cli.command("add")
@click.argument("path", type=click.Path(exists=True, dir_okay=False))
@click.option("--days", type=click.IntRange(0, 3650), required=True,
              help="Days after a reader confirms (0: right away).")
@click.option("--list", "list_slug", default=None, help="The list's slug (the default list when absent).")
def add_series_step(path: str, days: int, list_slug: str | None) -> None:
    """The article at PATH becomes the next step of the list's welcome series."""
    newsletter = _list_or_fail(list_slug)
    issue = _imported(path)
    with _as_command_error(issues.IssueError):
        step = series.add_step(issue, days, newsletter)
    audit.record("series_step_add", f"{newsletter.slug} step {step.position}: #{issue.id} {issue.title}", None, CLI)
    db.session.commit()
    click.echo(f"Step {step.position} of {newsletter.slug}'s welcome series: issue {issue.id}, "
               f"{days} day{'s' if days != 1 else ''} after confirming.")


def _series_change(action: str, change, done: str):
    @series_cli.command(action, help=change.__doc__)
    @click.option("--list", "list_slug", default=None, help="The list's slug (the default list when absent).")
    def command(list_slug: str | None) -> None:
        newsletter = _list_or_fail(list_slug)
        change(newsletter)
        audit.record(f"series_{action}", newsletter.slug, None, CLI)
        db.session.commit()
        click.echo(done.format(slug=newsletter.slug))
    return command


_series_change("pause", series.pause, "The welcome series of {slug} is paused.")
_series_change("resume", series.resume, "The welcome series of {slug} runs again.")
_series_change("stop", series.stop, "The welcome series of {slug} is stopped.")
_series_change("restart", series.restart, "The welcome series of {slug} runs again for readers who join from now on.")


# The jobs beat runs on a schedule that queue mail, each with what it counts and what run-due says of it.
# Each is safe to run at any moment: it does only what is due and never the same thing twice.
_MAIL_JOBS = (
    ("breaks ended", preferences.end_breaks),
    ("monthly digests mailed", digests.queue_due),
    ("inquiry digest mails", jobs.queue_digest),
    ("reply-by reminders", jobs.queue_nudges),
    ("waitlist check-in mails", waitlist.check_in),
)
_CLEAN_UPS = (("inquiries purged", jobs.purge_expired), ("unconfirmed readers forgotten", subscriptions.purge_unconfirmed))


@click.command("run-due")
@click.option("--now", "now_text", default=None, help="ISO-8601 time (without a zone, the practice's); default: now.")
@with_appcontext
def run_due(now_text: str | None) -> None:
    """Run every scheduled job due at that moment, as beat would.

    \b
    At the time given: scheduled issues start, welcome series steps, breaks that end (with their note),
    the monthly digests (from the 1st at SERIES_SEND_HOUR), the inquiry digest and reply-by reminders
    to the practice, waitlist check-ins, and the daily purges (old inquiries, unconfirmed readers),
    and the blog feed's new posts (as drafts).
    At the real time: the sweeps (deliveries a dead worker held, mail a lost hand-off left waiting).
    Each job does only what is due and never twice; the mail and batches go to the workers.
    """
    with _as_command_error(issues.IssueError):
        now = issues.parse_local_time(now_text) if now_text else utcnow()
    click.echo(f"At {practice.local_time(now)} ({practice.timezone().key}):")
    started = dispatcher.dispatch_due(now)
    steps = series.queue_due(now)
    db.session.commit()
    for issue_id in sorted(set(started) | set(steps)):
        enqueue_batches(issue_id)
    for issue_id in started:
        write_ledger(issue_id)
    click.echo(f"scheduled issues started: {', '.join(map(str, started)) or 'none'}")
    click.echo(f"welcome steps queued, issues: {', '.join(map(str, steps)) or 'none'}")
    for label, job in _MAIL_JOBS:
        mail_ids = job(now)
        db.session.commit()
        enqueue_mail(mail_ids)
        click.echo(f"{label}: {len(mail_ids)}")
    for label, job in _CLEAN_UPS:
        count = job(now)
        db.session.commit()
        click.echo(f"{label}: {count}")
    resumed = ledger.sweep()
    db.session.commit()
    for issue_id in resumed:
        enqueue_batches(issue_id)
    click.echo(f"mail waiting for a worker, sent: {sum(sweep_outgoing_mail().values())}")
    polled = feeds.poll()
    db.session.commit()
    click.echo(f"blog feed: {polled.error or ', '.join(f'draft {i}' for i in polled.drafts) or 'no new post'}")


# -- encryption at rest (security)

@click.command("rotate-key")
@click.option("--batch-size", default=500, show_default=True, help="Rows re-encrypted per transaction.")
@with_appcontext
def rotate_key(batch_size: int) -> None:
    """Re-encrypt stored personal data under INQUIRY_ENCRYPTION_KEY's first (newest) key (safe while the app runs)."""
    values, unreadable = Counter(), Counter()
    for batch in crypto.rotate(batch_size):
        db.session.commit()
        values[batch.table] += batch.values
        unreadable[batch.table] += batch.unreadable
    for table in values:
        click.echo(f"{table}: {values[table]} values re-encrypted"
                   + (f", {unreadable[table]} unreadable" if unreadable[table] else ""))
    if unreadable.total():
        raise click.ClickException(f"{unreadable.total()} values could not be decrypted with any key in "
                                   "INQUIRY_ENCRYPTION_KEY and were left as they were: keep the key they were "
                                   "written with in the list.")
    click.echo("Every encrypted value is now under the first key: the other keys can leave INQUIRY_ENCRYPTION_KEY.")
