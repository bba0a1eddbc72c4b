"""sending: the shared rate bucket for workers without Redis

Revision ID: 5e1d0c7a9b3f
Revises: 56c5ee12f2de
Create Date: 2026-11-30 22:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = '5e1d0c7a9b3f'
down_revision = "56c5ee12f2de"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('send_rate_buckets',
    sa.Column('name', sa.String(length=50), nullable=False),
    sa.Column('tokens', sa.Double(), nullable=False),
    sa.Column('at', sa.Double(), nullable=False),
    sa.Column('hour_window', sa.Integer(), nullable=False),
    sa.Column('hour_used', sa.Integer(), nullable=False),
    sa.Column('day_window', sa.Integer(), nullable=False),
    sa.Column('day_used', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade():
    op.drop_table('send_rate_buckets')
