"""The Celery app, bound to the Flask app: every task runs inside its app context."""
from datetime import timedelta

from celery.schedules import crontab
from celery.signals import worker_ready, worker_shutdown

from newsletter import create_app, heartbeats
from newsletter.sending.ledger import SWEEP_EVERY

flask_app = create_app(web=False)  # a worker serves no pages
app = flask_app.extensions["celery"]
app.conf.include = ["newsletter.tasks"]
# The database is the record of what must be sent; these sweeps send what a queue lost.
# `flask --app wsgi run-due` runs the same jobs (newsletter/commands.py): keep the two in step.
app.conf.beat_schedule = {
    "heartbeat": {"task": "newsletter.tasks.heartbeat", "schedule": heartbeats.EVERY},
    "sweep-outgoing-mail": {"task": "newsletter.tasks.sweep_outgoing_mail", "schedule": timedelta(seconds=30)},
    # 14:00 UTC is early morning in the practice's (US) timezone.
    "send-inquiry-digest": {"task": "newsletter.tasks.send_inquiry_digest", "schedule": crontab(hour=14, minute=0)},
    "purge-old-inquiries": {"task": "newsletter.tasks.purge_old_inquiries", "schedule": crontab(hour=9, minute=15)},
    "purge-unconfirmed-readers": {"task": "newsletter.tasks.purge_unconfirmed_readers", "schedule": timedelta(hours=1)},
    "dispatch-due-issues": {"task": "newsletter.tasks.dispatch_due_issues", "schedule": timedelta(seconds=10)},
    # Often, so a dead worker's readers go out again within a minute (LEASE + SWEEP_EVERY).
    "sweep-deliveries": {"task": "newsletter.tasks.sweep_deliveries", "schedule": SWEEP_EVERY},
    # Welcome steps go at SERIES_SEND_HOUR (practice time); a quarter-hour round is close enough.
    "send-series-steps": {"task": "newsletter.tasks.send_series_steps", "schedule": timedelta(minutes=15)},
    "end-breaks": {"task": "newsletter.tasks.end_breaks", "schedule": timedelta(minutes=15)},
    # Only does something in the first days of a month (readers/digests.py), and each reader's month once.
    "send-monthly-digests": {"task": "newsletter.tasks.send_monthly_digests", "schedule": timedelta(minutes=15)},
    "nudge-inquiries-due": {"task": "newsletter.tasks.nudge_inquiries_due", "schedule": timedelta(minutes=15)},
    # Her website's feed: new posts become drafts (a conditional GET, so a quiet feed costs a 304).
    "poll-blog-feed": {"task": "newsletter.tasks.poll_blog_feed", "schedule": timedelta(minutes=30)},
    "check-in-with-waitlist": {"task": "newsletter.tasks.check_in_with_waitlist", "schedule": crontab(hour=16, minute=0)},
}


_pulses = []


@worker_ready.connect
def start_worker_heartbeat(sender, **_):
    """Each worker writes its own heartbeat, beat or no beat (newsletter/heartbeats.py)."""
    name = heartbeats.worker_name(sender.hostname)
    _pulses.append(heartbeats.Pulse(flask_app.config["SQLALCHEMY_DATABASE_URI"], name).start())


@worker_shutdown.connect
def stop_worker_heartbeat(**_):
    for pulse in _pulses:
        pulse.stop()
