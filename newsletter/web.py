"""Small request helpers shared by the blueprints."""
from __future__ import annotations

from flask import request

from newsletter.subscriptions import Origin


def origin(source: str = "site") -> Origin:
    """Where this request came from, for consent and audit records."""
    return Origin(
        source=source,
        ip=request.remote_addr or "",
        user_agent=(request.user_agent.string or "")[:400],
    )
