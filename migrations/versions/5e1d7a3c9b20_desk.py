"""desk: mark duplicated issues, so only the admin list says "copy" (the headline stays as written)

Revision ID: 5e1d7a3c9b20
Revises: c4e8a1f27b93
Create Date: 2026-11-30 22:15:00

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1d7a3c9b20'
down_revision = "c4e8a1f27b93"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('issues') as batch_op:
        batch_op.add_column(sa.Column('is_copy', sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade():
    with op.batch_alter_table('issues') as batch_op:
        batch_op.drop_column('is_copy')
