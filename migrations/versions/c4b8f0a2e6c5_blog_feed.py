"""blog feed: the practice website's feed URL and the posts already made into drafts

Revision ID: c4b8f0a2e6c5
Revises: c3a7e9f1d5b4
Create Date: 2026-12-06 17:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'c4b8f0a2e6c5'
down_revision = "c3a7e9f1d5b4"
branch_labels = None
depends_on = None


def upgrade():
    # New tables only: no feed is set until she types its address.
    op.create_table('blog_feeds',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('url', sa.String(length=500), nullable=False),
    sa.Column('etag', sa.String(length=300), nullable=False),
    sa.Column('last_modified', sa.String(length=100), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=True),
    sa.Column('error', sa.Text(), nullable=False),
    sa.Column('error_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_table('feed_posts',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('entry_key', sa.String(length=64), nullable=False),
    sa.Column('link', sa.String(length=1000), nullable=False),
    sa.Column('issue_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['issue_id'], ['issues.id'], ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('entry_key')
    )
    with op.batch_alter_table('feed_posts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_feed_posts_issue_id'), ['issue_id'], unique=False)


def downgrade():
    with op.batch_alter_table('feed_posts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_feed_posts_issue_id'))
    op.drop_table('feed_posts')
    op.drop_table('blog_feeds')
