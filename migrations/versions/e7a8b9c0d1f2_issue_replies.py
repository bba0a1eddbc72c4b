"""issue replies: replies to an issue that the practice forwarded to be counted (which issue and when, never who)

Revision ID: e7a8b9c0d1f2
Revises: d6e1f2a3b4c5
Create Date: 2026-12-06 18:25:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'e7a8b9c0d1f2'
down_revision = "d6e1f2a3b4c5"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('issue_replies',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=False),
    sa.Column('fingerprint', sa.String(length=64), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('fingerprint')
    )
    op.create_index('ix_issue_replies_issue_id', 'issue_replies', ['issue_id'], unique=False)


def downgrade():
    op.drop_index('ix_issue_replies_issue_id', table_name='issue_replies')
    op.drop_table('issue_replies')
