"""issues.ledger_through: the ledger is written in steps while the first batches go

Revision ID: a4d2e6f8b0c1
Revises: c5c9a1b3f7d6
Create Date: 2026-12-06 23:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a4d2e6f8b0c1'
down_revision = "c5c9a1b3f7d6"
branch_labels = None
depends_on = None


def upgrade():
    # Issues dispatched before this have their whole ledger: None, "complete".
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ledger_through', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('issues', schema=None) as batch_op:
        batch_op.drop_column('ledger_through')
