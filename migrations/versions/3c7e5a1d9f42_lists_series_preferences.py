"""lists_series_preferences: several newsletters, welcome series, readers' preferences

Revision ID: 3c7e5a1d9f42
Revises: 8b4e2d7f1a63
Create Date: 2026-12-06 14:50:00

"""
from datetime import datetime, timezone

import sqlalchemy as sa
from alembic import op

revision = '3c7e5a1d9f42'
down_revision = "d7c3e9a2f4b1"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table(
        'newsletter_lists',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('slug', sa.String(60), nullable=False, unique=True),
        sa.Column('name', sa.String(120), nullable=False),
        sa.Column('description', sa.Text(), nullable=False),
        sa.Column('is_default', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('series_started_at', sa.DateTime(), nullable=True),
        sa.Column('series_paused', sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column('created_at', sa.DateTime(), nullable=False),
    )
    op.create_table(
        'list_memberships',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('subscriber_id', sa.Integer(), sa.ForeignKey('subscribers.id', ondelete='CASCADE'), nullable=False),
        sa.Column('list_id', sa.Integer(), sa.ForeignKey('newsletter_lists.id', ondelete='CASCADE'), nullable=False),
        sa.Column('joined_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('subscriber_id', 'list_id', name='uq_list_memberships_reader_list'),
    )
    op.create_index('ix_list_memberships_subscriber_id', 'list_memberships', ['subscriber_id'])
    op.create_index('ix_list_memberships_list_id', 'list_memberships', ['list_id'])
    op.create_table(
        'issue_lists',
        sa.Column('issue_id', sa.Integer(), sa.ForeignKey('issues.id', ondelete='CASCADE'), primary_key=True),
        sa.Column('list_id', sa.Integer(), sa.ForeignKey('newsletter_lists.id', ondelete='CASCADE'), primary_key=True),
    )
    op.create_table(
        'series_steps',
        sa.Column('id', sa.Integer(), primary_key=True),
        sa.Column('list_id', sa.Integer(), sa.ForeignKey('newsletter_lists.id', ondelete='CASCADE'), nullable=False),
        sa.Column('issue_id', sa.Integer(), sa.ForeignKey('issues.id', ondelete='CASCADE'), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('days', sa.Integer(), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.UniqueConstraint('list_id', 'position', name='uq_series_steps_list_position'),
    )
    with op.batch_alter_table('subscribers') as batch_op:
        batch_op.add_column(sa.Column('break_until', sa.DateTime(), nullable=True))
    with op.batch_alter_table('signup_requests') as batch_op:
        batch_op.add_column(sa.Column('lists', sa.String(500), nullable=False, server_default=''))

    # Backfill: the one newsletter there was becomes the default list, and every reader is on it.
    now = datetime.now(timezone.utc).replace(tzinfo=None)
    lists = sa.table('newsletter_lists', sa.column('id', sa.Integer), sa.column('slug', sa.String),
                     sa.column('name', sa.String), sa.column('description', sa.Text),
                     sa.column('is_default', sa.Boolean), sa.column('series_paused', sa.Boolean),
                     sa.column('created_at', sa.DateTime))
    op.bulk_insert(lists, [{'id': 1, 'slug': 'newsletter', 'name': 'Newsletter', 'description': '',
                            'is_default': True, 'series_paused': False, 'created_at': now}])
    op.execute(
        "INSERT INTO list_memberships (subscriber_id, list_id, joined_at) "
        "SELECT id, 1, COALESCE(confirmed_at, created_at) FROM subscribers"
    )
    if op.get_bind().dialect.name == 'postgresql':
        op.execute("SELECT setval(pg_get_serial_sequence('newsletter_lists', 'id'), 1)")


def downgrade():
    with op.batch_alter_table('signup_requests') as batch_op:
        batch_op.drop_column('lists')
    with op.batch_alter_table('subscribers') as batch_op:
        batch_op.drop_column('break_until')
    op.drop_table('series_steps')
    op.drop_table('issue_lists')
    op.drop_index('ix_list_memberships_list_id', table_name='list_memberships')
    op.drop_index('ix_list_memberships_subscriber_id', table_name='list_memberships')
    op.drop_table('list_memberships')
    op.drop_table('newsletter_lists')
