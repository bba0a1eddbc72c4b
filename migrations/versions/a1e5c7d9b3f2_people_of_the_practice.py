"""people of the practice: the owner lets a clinician write the newsletter; a removed person stays for the audit log

Revision ID: a1e5c7d9b3f2
Revises: c4b8f0a2e6c5
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'a1e5c7d9b3f2'
down_revision = "c4b8f0a2e6c5"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.add_column(sa.Column('may_write_newsletter', sa.Boolean(), server_default=sa.false(), nullable=False))
        batch_op.add_column(sa.Column('removed_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.drop_column('removed_at')
        batch_op.drop_column('may_write_newsletter')
