"""totp_last_step: a second-factor code is accepted once

Revision ID: 8b4e2d7f1a63
Revises: 7a3f9c1e5b22
Create Date: 2026-12-01 02:15:00

"""
from alembic import op
import sqlalchemy as sa


revision = '8b4e2d7f1a63'
down_revision = "7a3f9c1e5b22"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.add_column(sa.Column('totp_last_step', sa.Integer(), nullable=True))


def downgrade():
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.drop_column('totp_last_step')
