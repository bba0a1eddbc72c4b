"""A real gunicorn serving the app, as production runs it (`gunicorn -c gunicorn.conf.py wsgi:app`)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import requests

from tests.support import ROOT, free_port, wait_for


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


class GunicornServer:
    """gunicorn with the test settings in its environment; its stdout and stderr (the access log
    included) go to `log_path`."""

    def __init__(self, env: dict[str, str], log_path: Path, workers: int = 1) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self.env = {**os.environ, **env}
        self.args = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", f"127.0.0.1:{self.port}",
                     "--workers", str(workers), "--worker-class", "sync", "--no-control-socket", "wsgi:app"]
        self.process: subprocess.Popen | None = None

    def start(self) -> "GunicornServer":
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=self._log,
                                        stderr=subprocess.STDOUT, start_new_session=True)
        wait_for(lambda: self._up(), timeout=60, message=f"gunicorn did not start; see {self.log_path}")
        # The first request waits for the worker to import the app; after it the app answers at once.
        requests.get(f"{self.url}/static/css/site.css", timeout=60).raise_for_status()
        return self

    def _up(self) -> bool:
        if self.process.poll() is not None:
            raise AssertionError(f"gunicorn exited with {self.process.returncode}:\n" + self.log_text()[-3000:])
        return _answers(self.port)

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        if getattr(self, "_log", None):
            self._log.close()
