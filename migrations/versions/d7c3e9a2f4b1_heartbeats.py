"""heartbeats: beat, each worker and the last backup say when they last ran (flask doctor)

Revision ID: d7c3e9a2f4b1
Revises: 8b4e2d7f1a63
Create Date: 2026-12-06 14:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd7c3e9a2f4b1'
down_revision = "8b4e2d7f1a63"
branch_labels = None
depends_on = None


def upgrade():
    # Nothing to backfill: a part that has not beaten since the upgrade is reported as silent until it does.
    op.create_table('heartbeats',
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('beat_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade():
    op.drop_table('heartbeats')
