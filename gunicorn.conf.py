"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

The access log goes to stdout with the token of every token URL (newsletter.web.token_route) replaced by
[token] (in the request line, the path, the query, the referrer and any header), and the error log the same
(the app's log record factory), so no log holds a key to a reader's subscription, a booking or a waitlist place.
Other settings come from the command line or GUNICORN_CMD_ARGS as usual.
"""
import os

from gunicorn.glogging import Logger

# One worker process with four threads (WEB_CONCURRENCY adds processes, `--threads` or GUNICORN_CMD_ARGS
# changes the threads): while one request waits on the database or a slow client the others run, as with
# several sync workers, but the app is in memory once. Each process takes about 100 MB; a thread next to nothing.
# A practice's site serves a few requests a minute; one process keeps the production set within a 1 GB VPS.
workers = int(os.environ.get("WEB_CONCURRENCY") or 1)
threads = 4
accesslog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger, with tokens redacted from every access-log field. (Error-log lines are redacted by the
    record factory the app installs, core.logredact.redact_every_record.)

    The URL rules to redact are known once a worker has loaded the app (wsgi:app), before its first request.
    Imported there, not here: importing it at the top loads the whole app package (Flask, SQLAlchemy, Celery)
    into the master, which serves no request, for about 35 MB."""

    def atoms(self, resp, req, environ, request_time):
        from newsletter.core.logredact import redact

        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().atoms(resp, req, environ, request_time).items()}


logger_class = RedactingLogger
