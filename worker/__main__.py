"""`python -m worker`: the same worker as `celery -A worker worker`, started without Celery's
command line, which imports every subcommand, its REPL and prompt_toolkit (10 MB a process)
that a worker never uses. Deployments use this; the celery command works as well.

    python -m worker                          # every queue, as `celery -A worker worker`
    python -m worker --beat --pool threads    # the embedded mode: scheduler inside the worker
"""
import argparse
import sys

from worker.celery import app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loglevel", "-l", default="INFO")
    parser.add_argument("--pool", "-P", default=None, help="prefork (Celery's default), threads or solo")
    parser.add_argument("--concurrency", "-c", type=int, default=None)
    parser.add_argument("--queues", "-Q", default=None, help="comma-separated; default: every queue")
    parser.add_argument("--hostname", "-n", default=None)
    parser.add_argument("--beat", "-B", action="store_true", help="run the scheduler in this process too")
    parser.add_argument("--schedule", "-s", default=None, help="beat's schedule file")
    for event in ("gossip", "mingle", "heartbeat"):
        parser.add_argument(f"--without-{event}", action="store_true", help=f"as `celery worker --without-{event}`")
    options = parser.parse_args(argv)
    settings = {"loglevel": options.loglevel, "beat": options.beat, "hostname": options.hostname,
                "pool_cls": options.pool, "concurrency": options.concurrency,
                "queues": options.queues.split(",") if options.queues else None,
                "without_gossip": options.without_gossip, "without_mingle": options.without_mingle,
                "without_heartbeat": options.without_heartbeat}
    if options.schedule:
        settings["schedule_filename"] = options.schedule
    worker = app.Worker(**{key: value for key, value in settings.items() if value not in (None, False)})
    worker.start()
    return worker.exitcode or 0


if __name__ == "__main__":
    sys.exit(main())
