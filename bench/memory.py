"""Memory of the embedded stack (scripts/run.sh: web, and the worker with beat inside), idle.

    .venv/bin/python bench/memory.py              # settle for 30 s, then measure
    .venv/bin/python bench/memory.py --settle 60

Starts `honcho --procfile Procfile.dev start` on the embedded defaults in a temporary instance
folder (SQLite, kombu's SQLite broker, the outbox folder: nothing configured), waits for it to
settle, and prints each process's PSS (proportional set size: shared pages counted in part, from
/proc/PID/smaps_rollup) and RSS, and the stack's total PSS, the figure that says what it costs
a small server. Honcho itself is not counted: it only runs the stack in a terminal.
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV_BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def children(pid: int) -> list[int]:
    """Every descendant of pid."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *children(int(child))]
    return found


def memory_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def command(pid: int) -> str:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:90]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--settle", type=float, default=30.0, help="seconds to wait before measuring")
    args = parser.parse_args()
    workdir = Path(tempfile.mkdtemp(prefix="newsletter-memory-"))
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "SMTP_HOST", "OUTBOX_DIR")}
    env.update(INSTANCE_PATH=str(workdir), WEB_PORT=str(free_port()), PATH=f"{VENV_BIN}:{env.get('PATH', '')}",
               BASE_URL="http://localhost")
    stack = None
    try:
        subprocess.run(["flask", "--app", "wsgi", "db", "upgrade"], cwd=ROOT, env=env, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        stack = subprocess.Popen(["honcho", "--procfile", "Procfile.dev", "start"], cwd=ROOT, env=env,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(args.settle)
        total = 0
        for pid in children(stack.pid):
            pss, rss = memory_kb(pid, "Pss"), memory_kb(pid, "Rss")
            total += pss
            print(f"{pss / 1024:7.1f} MB PSS {rss / 1024:7.1f} MB RSS  {command(pid)}")
        print(f"{total / 1024:7.1f} MB PSS in all (target < 250 MB)")
    finally:
        if stack is not None:
            os.killpg(stack.pid, signal.SIGTERM)
            try:
                stack.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(stack.pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
