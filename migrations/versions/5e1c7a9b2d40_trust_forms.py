"""trust (public side): a fingerprint per inquiry, so the same inquiry sent at once is stored once

Revision ID: 5e1c7a9b2d40
Revises: 90da34ba7ddc
Create Date: 2026-11-30 22:30:00

"""
from alembic import op
import sqlalchemy as sa


revision = "5e1c7a9b2d40"
down_revision = "90da34ba7ddc"
branch_labels = None
depends_on = None


def upgrade():
    # Existing inquiries keep NULL: NULLs never collide in a unique constraint.
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("fingerprint", sa.String(length=64), nullable=True))
        batch_op.create_unique_constraint("uq_inquiries_fingerprint", ["fingerprint"])


def downgrade():
    with op.batch_alter_table("inquiries", schema=None) as batch_op:
        batch_op.drop_constraint("uq_inquiries_fingerprint", type_="unique")
        batch_op.drop_column("fingerprint")
