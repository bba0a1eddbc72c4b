"""consultation hosts: each clinician of a group practice has their own calendar

A consultation is in its host's calendar: the inquiry's clinician in a group practice, else the practice's
(host NULL). A start time is unique per host, no longer practice-wide. Existing consultations get their
inquiry's clinician as host when the practice is a group (two clinician profiles or more), as booking does.

Revision ID: f8b9c0d1e2a3
Revises: e7a8b9c0d1f2
Create Date: 2026-12-06 19:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'f8b9c0d1e2a3'
down_revision = "e7a8b9c0d1f2"
branch_labels = None
depends_on = None

# SQLite keeps the old UNIQUE (starts_at) without a name; the batch copy of the table names it by this.
NAMING = {"uq": "uq_%(table_name)s_%(column_0_name)s"}
HOST_IS_NULL = sa.text("host_id IS NULL")
BACKFILL = """
UPDATE consultations SET host_id = (
    SELECT clinicians.id FROM inquiries JOIN clinicians ON clinicians.admin_id = inquiries.assignee_id
    WHERE inquiries.id = consultations.inquiry_id)
WHERE (SELECT count(*) FROM clinicians) >= 2
"""


def _unique_on_starts_at() -> str:
    """The name of the UNIQUE on starts_at alone: PostgreSQL's own, or the one NAMING gives SQLite's."""
    for constraint in sa.inspect(op.get_bind()).get_unique_constraints("consultations"):
        if constraint["column_names"] == ["starts_at"]:
            return constraint["name"] or "uq_consultations_starts_at"
    raise RuntimeError("consultations has no UNIQUE (starts_at) to replace")


def upgrade():
    old_unique = _unique_on_starts_at()
    with op.batch_alter_table('consultations', naming_convention=NAMING) as batch_op:
        batch_op.add_column(sa.Column('host_id', sa.Integer(), nullable=True))
        batch_op.create_foreign_key('fk_consultations_host_id_clinicians', 'clinicians', ['host_id'], ['id'],
                                    ondelete='SET NULL')
    op.execute(BACKFILL)
    with op.batch_alter_table('consultations', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint(old_unique, type_='unique')
        batch_op.create_unique_constraint('uq_consultations_host_starts_at', ['host_id', 'starts_at'])
    op.create_index('uq_consultations_practice_starts_at', 'consultations', ['starts_at'], unique=True,
                    sqlite_where=HOST_IS_NULL, postgresql_where=HOST_IS_NULL)


def downgrade():
    """Back to one practice-wide calendar: fails if two hosts have a consultation at the same time."""
    op.drop_index('uq_consultations_practice_starts_at', table_name='consultations')
    with op.batch_alter_table('consultations', naming_convention=NAMING) as batch_op:
        batch_op.drop_constraint('uq_consultations_host_starts_at', type_='unique')
        batch_op.create_unique_constraint('consultations_starts_at_key', ['starts_at'])
        batch_op.drop_constraint('fk_consultations_host_id_clinicians', type_='foreignkey')
        batch_op.drop_column('host_id')
