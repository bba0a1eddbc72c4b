"""roles and assignees: each person of a group practice has a role, each inquiry the person who answers it

Every existing person becomes an owner (a solo practice keeps seeing everything) and every existing inquiry
stays unassigned (the owner answers it, as before).

Revision ID: e4b7c1a9d2f0
Revises: d3a9f0c2e7b1
Create Date: 2026-12-06 16:50:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e4b7c1a9d2f0'
down_revision = "d3a9f0c2e7b1"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.add_column(sa.Column('role', sa.String(length=20), server_default='owner', nullable=False))
    with op.batch_alter_table('inquiries') as batch_op:
        batch_op.add_column(sa.Column('assignee_id', sa.Integer(), nullable=True))
        batch_op.create_index('ix_inquiries_assignee_id', ['assignee_id'], unique=False)
        batch_op.create_foreign_key('fk_inquiries_assignee_id_admin_users', 'admin_users', ['assignee_id'], ['id'],
                                    ondelete='SET NULL')


def downgrade():
    with op.batch_alter_table('inquiries') as batch_op:
        batch_op.drop_constraint('fk_inquiries_assignee_id_admin_users', type_='foreignkey')
        batch_op.drop_index('ix_inquiries_assignee_id')
        batch_op.drop_column('assignee_id')
    with op.batch_alter_table('admin_users') as batch_op:
        batch_op.drop_column('role')
