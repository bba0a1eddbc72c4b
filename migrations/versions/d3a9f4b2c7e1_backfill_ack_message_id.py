"""backfill_ack_message_id: replies to inquiries from before ack_message_id thread under their acknowledgement

Inquiries acknowledged before 56c5ee12f2de have no ack_message_id, so a reply to them went out without
In-Reply-To (and spam filters scored it as a fake reply). Their acknowledgement is still in the outbox
(kind "inquiry_ack", to the inquirer, queued when the inquiry was forwarded): its Message-ID is read
from there, from the draft or from the finished message.

Revision ID: d3a9f4b2c7e1
Revises: 8b4e2d7f1a63
Create Date: 2026-12-06 14:40:00

"""
import json
from datetime import timedelta
from email.parser import BytesHeaderParser

import sqlalchemy as sa
from alembic import op

revision = 'd3a9f4b2c7e1'
down_revision = "d3a9f6c2e417"
branch_labels = None
depends_on = None

# The acknowledgement is queued in the same transaction that marks the inquiry forwarded.
ACK_WINDOW = timedelta(minutes=5)
DRAFT_MARK = b"\x00draft\n"  # newsletter.mail.outbox.DRAFT_MARK, as it was when this migration was written

inquiries = sa.table("inquiries", sa.column("id", sa.Integer), sa.column("email", sa.String),
                     sa.column("created_at", sa.DateTime), sa.column("forwarded_at", sa.DateTime),
                     sa.column("ack_message_id", sa.String))
outgoing_mail = sa.table("outgoing_mail", sa.column("kind", sa.String), sa.column("recipient", sa.String),
                         sa.column("created_at", sa.DateTime), sa.column("message", sa.LargeBinary))


def message_id_of(stored: bytes) -> str | None:
    """The Message-ID of an outbox message: a draft's own, or the header of a finished one."""
    # The app's keys: flask db upgrade runs inside the app.
    from newsletter.core import crypto

    message = crypto.decrypt(stored)
    if message.startswith(DRAFT_MARK):
        return json.loads(message[len(DRAFT_MARK):]).get("message_id")
    return BytesHeaderParser().parsebytes(message).get("Message-ID")


def backfill_ack_message_ids(connection) -> int:
    """Give every acknowledged inquiry without ack_message_id the Message-ID of its acknowledgement;
    returns how many were filled."""
    missing = connection.execute(
        sa.select(inquiries.c.id, inquiries.c.email, inquiries.c.created_at, inquiries.c.forwarded_at)
        .where(inquiries.c.ack_message_id.is_(None), inquiries.c.email != "")
    ).all()
    filled = 0
    for inquiry_id, email, created_at, forwarded_at in missing:
        stored = connection.scalar(
            sa.select(outgoing_mail.c.message)
            .where(outgoing_mail.c.kind == "inquiry_ack", outgoing_mail.c.recipient == email,
                   outgoing_mail.c.created_at >= created_at,
                   outgoing_mail.c.created_at <= (forwarded_at or created_at) + ACK_WINDOW)
            .order_by(outgoing_mail.c.created_at).limit(1)
        )
        message_id = message_id_of(stored) if stored is not None else None
        if message_id:
            connection.execute(sa.update(inquiries).where(inquiries.c.id == inquiry_id)
                               .values(ack_message_id=message_id[:250]))
            filled += 1
    return filled


def upgrade():
    backfill_ack_message_ids(op.get_bind())


def downgrade():
    pass  # the Message-IDs are true either way; nothing to undo
