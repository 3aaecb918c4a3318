"""verdict

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('verdict', sa.String(length=16), nullable=True))
        batch_op.add_column(sa.Column('verdict_note', sa.Text(), nullable=False, server_default=''))



def downgrade() -> None:
    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.drop_column('verdict_note')
        batch_op.drop_column('verdict')

