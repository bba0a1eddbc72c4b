"""signup requests: the form stores a signup, a worker applies it

Revision ID: 7a3f9c1e5b22
Revises: 5e1d0c7a9b3f
Create Date: 2026-12-01 02:00:00

"""
from alembic import op
import sqlalchemy as sa


revision = '7a3f9c1e5b22'
down_revision = "5e1d0c7a9b3f"
branch_labels = None
depends_on = None


def upgrade():
    op.create_table('signup_requests',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('email', sa.String(length=320), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('source', sa.String(length=20), nullable=False),
    sa.Column('wording', sa.Text(), nullable=False),
    sa.Column('ip', sa.String(length=64), nullable=False),
    sa.Column('user_agent', sa.String(length=400), nullable=False),
    sa.Column('created_at', sa.DateTime(), nullable=False),
    sa.PrimaryKeyConstraint('id')
    )
    op.create_index(op.f('ix_signup_requests_created_at'), 'signup_requests', ['created_at'], unique=False)


def downgrade():
    op.drop_index(op.f('ix_signup_requests_created_at'), table_name='signup_requests')
    op.drop_table('signup_requests')
