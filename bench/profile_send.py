"""Profile a worker's send path in one process: `engine.send_batch` in a loop under cProfile.

    .venv/bin/python bench/profile_send.py --readers 5000 [--sqlite] [--top 30]

The same services as bench/send.py (its own smtp-sink and Redis, a throw-away PostgreSQL database);
prints the CPU and wall time per message of one worker (profiler off, then on) and the profile's top
functions by own time.
"""
from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import shutil
import tempfile
import time
from pathlib import Path

import send  # bench/send.py: the services and the data
from common import stop_all


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--readers", type=int, default=5000)
    parser.add_argument("--sqlite", action="store_true")
    parser.add_argument("--top", type=int, default=30)
    parser.add_argument("--sort", default="tottime", help="pstats order: tottime, cumulative...")
    parser.add_argument("--save", help="also write the profile to this file")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="newsletter-profile-"))
    started = []
    sink_port, redis_port = send.free_port(), send.free_port()
    started.append(send.start_smtp_sink(sink_port))
    started.append(send.start_redis(redis_port, workdir))
    database_url, drop = send.make_database(workdir, args.sqlite)
    os.environ.update(send.bench_env(workdir, database_url, sink_port, redis_port, 0))
    try:
        from newsletter import create_app
        from newsletter.core.extensions import db
        from newsletter.sending import dispatcher, engine

        app = create_app(web=False)
        send.seed(app, args.readers)
        issue_ids = [send.make_issue(app) for _ in range(2)]
        with app.app_context():
            for issue_id in issue_ids:
                dispatcher.dispatch(issue_id)
                while not dispatcher.write_ledger_step(issue_id).finished:  # what the dispatch task goes on to do
                    pass
            db.session.commit()
            for issue_id, profiler in zip(issue_ids, (None, cProfile.Profile(time.process_time))):
                began, wall, sent = time.process_time(), time.perf_counter(), 0
                if profiler:
                    profiler.enable()
                while result := engine.send_batch(issue_id):
                    if not result.claimed:
                        break
                    sent += result.sent
                if profiler:
                    profiler.disable()
                cpu, wall = time.process_time() - began, time.perf_counter() - wall
                print(f"{'profiled' if profiler else 'plain'}: {sent} messages, "
                      f"{cpu / max(sent, 1) * 1e6:.0f} us CPU and {wall / max(sent, 1) * 1e6:.0f} us wall per message "
                      f"({sent / wall:.0f} messages/s, one worker)", flush=True)
        if args.save:
            profiler.dump_stats(args.save)
        pstats.Stats(profiler).sort_stats(args.sort).print_stats(args.top)
    finally:
        stop_all(started)
        drop()
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
