"""Helpers the bench scripts share (they run as scripts, so bench/ is on sys.path: `from common import ...`)."""
from __future__ import annotations

import subprocess


def stop_all(processes: list[subprocess.Popen]) -> None:
    """Stop the processes newest first: SIGTERM, then SIGKILL for any still running after 30 s."""
    for process in reversed(processes):
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
