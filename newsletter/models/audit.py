from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from newsletter.core.extensions import db
from newsletter.models.base import utcnow


class AuditEntry(db.Model):
    """One admin action (or attempt), for the log at /admin/audit."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("admin_users.id", ondelete="SET NULL"))
    action: Mapped[str] = mapped_column(String(40))
    detail: Mapped[str] = mapped_column(String(500), default="", server_default="")
    ip: Mapped[str] = mapped_column(String(64), default="", server_default="")
