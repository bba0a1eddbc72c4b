"""clinicians: a public profile per clinician, the practice's routing choices, and the escalation of a missed day

Revision ID: b2f6d8e0c4a3
Revises: a1e5c7d9b3f2
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'b2f6d8e0c4a3'
down_revision = "a1e5c7d9b3f2"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'clinicians',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('admin_id', sa.Integer(), nullable=False),
        sa.Column('name', sa.String(length=100), nullable=False),
        sa.Column('slug', sa.String(length=60), nullable=False),
        sa.Column('credentials', sa.String(length=200), server_default='', nullable=False),
        sa.Column('bio', sa.Text(), server_default='', nullable=False),
        sa.Column('works_with', sa.String(length=400), server_default='', nullable=False),
        sa.Column('languages', sa.String(length=200), server_default='', nullable=False),
        sa.Column('fees', sa.String(length=400), server_default='', nullable=False),
        sa.Column('accepting_clients', sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column('consultation_hours', sa.Text(), server_default='', nullable=False),
        sa.Column('signature', sa.Text(), server_default='', nullable=False),
        sa.Column('booking_link', sa.String(length=300), server_default='', nullable=False),
        sa.Column('last_assigned_at', sa.DateTime(), nullable=True),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['admin_id'], ['admin_users.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('admin_id'),
        sa.UniqueConstraint('slug'),
    )
    with op.batch_alter_table('practice_profile') as batch_op:
        batch_op.add_column(sa.Column('routing', sa.String(length=20), server_default='coordinator', nullable=False))
        batch_op.add_column(sa.Column('assignee_mail', sa.String(length=20), server_default='full', nullable=False))
    with op.batch_alter_table('inquiries') as batch_op:
        batch_op.add_column(sa.Column('escalated_at', sa.DateTime(), nullable=True))


def downgrade():
    with op.batch_alter_table('inquiries') as batch_op:
        batch_op.drop_column('escalated_at')
    with op.batch_alter_table('practice_profile') as batch_op:
        batch_op.drop_column('assignee_mail')
        batch_op.drop_column('routing')
    op.drop_table('clinicians')
