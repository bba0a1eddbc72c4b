"""gunicorn settings: `gunicorn -c gunicorn.conf.py wsgi:app`.

The access log goes to stdout with every confirm/unsubscribe token replaced by [token] (in the request
line, the path, the referrer and any header), so the log never holds a key to a reader's subscription.
Other settings come from the command line or GUNICORN_CMD_ARGS as usual.
"""
from gunicorn.glogging import Logger

from newsletter.logredact import redact

accesslog = "-"


class RedactingLogger(Logger):
    """gunicorn's logger, with tokens redacted from every access-log field."""

    def atoms(self, resp, req, environ, request_time):
        return {key: redact(value) if isinstance(value, str) else value
                for key, value in super().atoms(resp, req, environ, request_time).items()}


logger_class = RedactingLogger
