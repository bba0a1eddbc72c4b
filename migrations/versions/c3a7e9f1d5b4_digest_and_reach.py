"""digest and reach: a reader may choose a monthly digest (and each month's digest is recorded once), and the
practice may count clicks per link (off by default; never per reader)

Revision ID: c3a7e9f1d5b4
Revises: e4b7c1a9d2f0
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c3a7e9f1d5b4'
down_revision = "e4b7c1a9d2f0"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('subscribers') as batch_op:
        batch_op.add_column(sa.Column('digest_since', sa.DateTime(), nullable=True))
    with op.batch_alter_table('practice_profile') as batch_op:
        batch_op.add_column(sa.Column('count_clicks', sa.Boolean(), server_default=sa.false(), nullable=False))
    op.create_table(
        'reader_digests',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('subscriber_id', sa.Integer(), nullable=False),
        sa.Column('month', sa.String(length=7), nullable=False),
        sa.Column('issues', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['subscriber_id'], ['subscribers.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
        sa.UniqueConstraint('subscriber_id', 'month', name='uq_reader_digests_reader_month'),
    )
    op.create_table(
        'link_clicks',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('issue_id', sa.Integer(), nullable=False),
        sa.Column('link', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id'),
    )
    op.create_index('ix_link_clicks_issue_link', 'link_clicks', ['issue_id', 'link'], unique=False)


def downgrade():
    op.drop_index('ix_link_clicks_issue_link', table_name='link_clicks')
    op.drop_table('link_clicks')
    op.drop_table('reader_digests')
    with op.batch_alter_table('practice_profile') as batch_op:
        batch_op.drop_column('count_clicks')
    with op.batch_alter_table('subscribers') as batch_op:
        batch_op.drop_column('digest_since')
