"""How long rendering an issue takes (once per issue) and filling in one reader's copy (once per reader).

    .venv/bin/python bench/render_issue.py [ARTICLE]

Runs on a throw-away SQLite database with the sample article (or the file given).
"""
from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAMPLE = ROOT / "seeds" / "sample-article.txt"


def main() -> None:
    source = Path(sys.argv[1] if len(sys.argv) > 1 else SAMPLE).read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory() as folder:
        os.environ["INSTANCE_PATH"] = folder
        from newsletter import create_app
        from newsletter.core.extensions import db
        from newsletter.publishing import issues
        from newsletter.readers import personalize

        app = create_app({"DATABASE_URL": f"sqlite:///{folder}/bench.sqlite", "SECRET_KEY": "bench",
                          "BASE_URL": "https://news.example.org"})
        with app.app_context():
            db.create_all()
            issue = issues.create_from_source(source)
            renders = 20
            started = time.perf_counter()
            for _ in range(renders):
                issues.rerender(issue)
            per_render = (time.perf_counter() - started) / renders
            fills = 10_000
            started = time.perf_counter()
            for number in range(fills):
                personalize.fill(issue.email_html, unsubscribe_url=f"https://news.example.org/unsubscribe/{number}",
                                 name="", as_html=True)
            per_fill = (time.perf_counter() - started) / fills
    print(f"render (parse, templates, premailer), once per issue: {per_render * 1000:.0f} ms")
    print(f"mail size: HTML {len(issue.email_html):,} bytes, text {len(issue.email_text):,} bytes")
    print(f"one reader's HTML part filled in: {per_fill * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
