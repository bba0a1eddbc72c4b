"""`python -m worker.beat`: the scheduler alone, the same as `celery -A worker beat` at a smaller size.

Started without Celery's command line (click, its REPL, prompt_toolkit), and without importing the task
modules: beat only sends tasks by name, and where each goes comes from the settings' `task_routes`, so
newsletter/tasks.py (and the mail renderer, the sending engine, ...) stay out of this process.

    python -m worker.beat --schedule /tmp/celerybeat-schedule
"""
import argparse
import sys

from worker.celery import app


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m worker.beat", description=__doc__.split("\n\n")[0])
    parser.add_argument("--loglevel", "-l", default="INFO")
    parser.add_argument("--schedule", "-s", default=None, help="beat's schedule file")
    options = parser.parse_args(argv)
    app.conf.include = []  # the tasks are run by the worker; beat needs only their names
    settings = {"loglevel": options.loglevel}
    if options.schedule:
        settings["schedule"] = options.schedule
    app.Beat(**settings).run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
