"""clinician photo: the team page's photo of each clinician, re-encoded, kept in the database for backups

Revision ID: d6e1f2a3b4c5
Revises: b2f6d8e0c4a3
Create Date: 2026-12-06 18:10:00

"""
from alembic import op
import sqlalchemy as sa


revision = 'd6e1f2a3b4c5'
down_revision = "b2f6d8e0c4a3"
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('clinicians') as batch_op:
        batch_op.add_column(sa.Column('photo', sa.LargeBinary(), nullable=True))
        batch_op.add_column(sa.Column('photo_version', sa.String(length=16), server_default='', nullable=False))


def downgrade():
    with op.batch_alter_table('clinicians') as batch_op:
        batch_op.drop_column('photo_version')
        batch_op.drop_column('photo')
