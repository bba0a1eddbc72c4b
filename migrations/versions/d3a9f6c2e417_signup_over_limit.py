"""signup_over_limit: a signup past its address's limit is stored like any other; the worker drops it

Revision ID: d3a9f6c2e417
Revises: 8b4e2d7f1a63
Create Date: 2026-12-06 14:40:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd3a9f6c2e417'
down_revision = "3c7e5a1d9f42"
branch_labels = None
depends_on = None


def upgrade():
    # Signups waiting from before were within their limit (the form stored no others): false for them.
    with op.batch_alter_table('signup_requests') as batch_op:
        batch_op.add_column(sa.Column('over_limit', sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade():
    with op.batch_alter_table('signup_requests') as batch_op:
        batch_op.drop_column('over_limit')
