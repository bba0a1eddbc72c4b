"""encrypt personal data: everything an inquirer filled in, and the outbox's recipients, encrypted at rest

The clear columns are re-created as encrypted ones and their rows encrypted in place, a batch at a time,
with INQUIRY_ENCRYPTION_KEY's newest key; the outbox gets a keyed hash of each recipient for lookups.
Columns that were encrypted already only lose their `_encrypted` suffix. The downgrade decrypts back.

Revision ID: d3a9f0c2e7b1
Revises: 8b4e2d7f1a63
Create Date: 2026-12-06 15:00:00

"""
from contextlib import contextmanager
from typing import Callable

from alembic import op
import sqlalchemy as sa

from newsletter.core.crypto import Encrypted, Unreadable, lookup_hash

revision = 'd3a9f0c2e7b1'
down_revision = "d3a9f4b2c7e1"
branch_labels = None
depends_on = None

BATCH = 500
# The columns that held clear values: name, type before, server default before, nullable.
CLEAR = {
    "inquiries": [
        ("name", sa.String(200), None, False),
        ("email", sa.String(320), None, False),
        ("preferred_contact", sa.String(10), None, False),
        ("partner_name", sa.String(100), "", False),
        ("heard_from", sa.String(20), "", False),
        ("heard_from_other", sa.String(100), "", False),
        ("voicemail_ok", sa.Boolean(), sa.false(), False),
        ("text_ok", sa.Boolean(), sa.false(), False),
        ("discreet", sa.Boolean(), sa.false(), False),
    ],
    "outgoing_mail": [
        ("recipient", sa.String(320), None, False),
        ("last_error", sa.String(500), None, False),
    ],
}
# Encrypted already: only the name changes.
RENAMED = {
    "inquiries": [("phone_encrypted", "phone"), ("message_encrypted", "message")],
    "inquiry_notes": [("body_encrypted", "body")],
    "inquiry_responses": [("body_encrypted", "body")],
}


@contextmanager
def _sqlite_foreign_keys_off():
    """SQLite re-creates a table to change a column; with foreign keys on, dropping the old inquiries
    table would delete its notes and replies (ON DELETE CASCADE)."""
    conn = op.get_bind()
    if conn.dialect.name != "sqlite":
        yield
        return
    conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
    if conn.exec_driver_sql("PRAGMA foreign_keys").scalar():
        raise RuntimeError("SQLite would not turn foreign keys off for this migration; nothing was changed.")
    try:
        yield
    finally:
        conn.exec_driver_sql("PRAGMA foreign_keys=ON")


def _copy(table_name: str, pairs: list[tuple[sa.ColumnClause, sa.ColumnClause, Callable]]) -> None:
    """For every row, a batch at a time: each pair's target = its function of its source's value."""
    conn = op.get_bind()
    columns = {column.name: column for pair in pairs for column in pair[:2]}
    table = sa.table(table_name, sa.column("id"), *columns.values())
    sources = [table.c[source.name] for source, _target, _change in pairs]
    last = 0
    while True:
        rows = conn.execute(sa.select(table.c.id, *sources).where(table.c.id > last).order_by(table.c.id)
                            .limit(BATCH)).all()
        if not rows:
            return
        for row in rows:
            values = {target.name: change(value) for (_s, target, change), value in zip(pairs, row[1:])}
            conn.execute(table.update().where(table.c.id == row[0]).values(values))
        last = rows[-1][0]


def _encrypter(kind) -> Callable:
    return lambda value: Encrypted(flag=isinstance(kind, sa.Boolean)).process_bind_param(value, None)


def _decrypter(kind) -> Callable:
    def decrypted(token):
        value = Encrypted(flag=isinstance(kind, sa.Boolean)).process_result_value(token, None)
        if token is not None and (value is None or isinstance(value, Unreadable)):
            raise RuntimeError("A stored value cannot be decrypted with INQUIRY_ENCRYPTION_KEY: the downgrade stopped.")
        return value
    return decrypted


def upgrade():
    with _sqlite_foreign_keys_off():
        for table, columns in CLEAR.items():
            with op.batch_alter_table(table) as batch_op:
                for name, _kind, _default, _nullable in columns:
                    batch_op.add_column(sa.Column(f"{name}_new", sa.LargeBinary(), nullable=True))
                if table == "outgoing_mail":
                    batch_op.add_column(sa.Column("recipient_hash", sa.String(64), nullable=True))
            pairs = [(sa.column(name, kind), sa.column(f"{name}_new", sa.LargeBinary()), _encrypter(kind))
                     for name, kind, _d, _n in columns]
            if table == "outgoing_mail":
                pairs.append((sa.column("recipient"), sa.column("recipient_hash"), lookup_hash))
            _copy(table, pairs)
            with op.batch_alter_table(table) as batch_op:
                for name, _kind, _default, nullable in columns:
                    batch_op.drop_column(name)
                    batch_op.alter_column(f"{name}_new", new_column_name=name, existing_type=sa.LargeBinary(),
                                          nullable=nullable)
                for old, new in RENAMED.get(table, []):
                    batch_op.alter_column(old, new_column_name=new, existing_type=sa.LargeBinary())
                if table == "outgoing_mail":
                    batch_op.alter_column("recipient_hash", existing_type=sa.String(64), nullable=False)
                    batch_op.create_index("ix_outgoing_mail_recipient_hash", ["recipient_hash"])
        for table in ("inquiry_notes", "inquiry_responses"):
            with op.batch_alter_table(table) as batch_op:
                for old, new in RENAMED[table]:
                    batch_op.alter_column(old, new_column_name=new, existing_type=sa.LargeBinary())


def downgrade():
    with _sqlite_foreign_keys_off():
        for table in ("inquiry_notes", "inquiry_responses"):
            with op.batch_alter_table(table) as batch_op:
                for old, new in RENAMED[table]:
                    batch_op.alter_column(new, new_column_name=old, existing_type=sa.LargeBinary())
        for table, columns in CLEAR.items():
            with op.batch_alter_table(table) as batch_op:
                for name, kind, _default, _nullable in columns:
                    batch_op.add_column(sa.Column(f"{name}_clear", kind, nullable=True))
            _copy(table, [(sa.column(name, sa.LargeBinary()), sa.column(f"{name}_clear", kind), _decrypter(kind))
                      for name, kind, _d, _n in columns])
            with op.batch_alter_table(table) as batch_op:
                if table == "outgoing_mail":
                    batch_op.drop_index("ix_outgoing_mail_recipient_hash")
                    batch_op.drop_column("recipient_hash")
                for old, new in RENAMED.get(table, []):
                    batch_op.alter_column(new, new_column_name=old, existing_type=sa.LargeBinary())
                for name, kind, default, nullable in columns:
                    batch_op.drop_column(name)
                    batch_op.alter_column(f"{name}_clear", new_column_name=name, existing_type=kind,
                                          nullable=nullable, server_default=default)
