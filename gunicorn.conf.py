"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

The access log goes to stdout with every confirm/unsubscribe token replaced by [token] (in the request
line, the path, the referrer and any header), so the log never holds a key to a reader's subscription.
Other settings come from the command line or GUNICORN_CMD_ARGS as usual.
"""
import multiprocessing
import os

from gunicorn.glogging import Logger

from newsletter.core.logredact import redact

# Two sync workers per core (WEB_CONCURRENCY overrides): while one waits on the database the other
# runs, and a slow client or request never holds up the whole site. Each takes about 90 MB.
workers = int(os.environ.get("WEB_CONCURRENCY") or 2 * multiprocessing.cpu_count())
accesslog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger, with tokens redacted from every access-log field."""

    def atoms(self, resp, req, environ, request_time):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().atoms(resp, req, environ, request_time).items()}


logger_class = RedactingLogger
