"""deliveries leased index: beat's sweep reads the rows with a lease, not the whole ledger

Revision ID: c5c9a1b3f7d6
Revises: f8b9c0d1e2a3
Create Date: 2026-12-06 19:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c5c9a1b3f7d6'
down_revision = "f8b9c0d1e2a3"
branch_labels = None
depends_on = None

LEASED = sa.text("lease_until IS NOT NULL")


def upgrade():
    op.create_index('ix_deliveries_leased', 'deliveries', ['lease_until'], unique=False,
                    sqlite_where=LEASED, postgresql_where=LEASED)


def downgrade():
    op.drop_index('ix_deliveries_leased', table_name='deliveries')
