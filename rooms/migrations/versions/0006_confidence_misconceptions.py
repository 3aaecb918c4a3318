"""misconceptions in the bank; a score's confidence, doubt and misconceptions found;
per-bank score calibrations from recruiters' overrides

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.add_column(sa.Column('misconceptions', sa.JSON(), nullable=False, server_default='[]'))
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.add_column(sa.Column('confidence', sa.Float(), nullable=False, server_default='1'))
        batch_op.add_column(sa.Column('doubt', sa.Text(), nullable=False, server_default=''))
        batch_op.add_column(sa.Column('misconceptions', sa.JSON(), nullable=False, server_default='[]'))
    op.create_table('score_calibrations',
    sa.Column('specialization_id', sa.String(length=64), nullable=False),
    sa.Column('scale', sa.Float(), nullable=False),
    sa.Column('offset', sa.Float(), nullable=False),
    sa.Column('answers', sa.Integer(), nullable=False),
    sa.Column('fitted_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['specialization_id'], ['specializations.id'], ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('specialization_id')
    )


def downgrade() -> None:
    op.drop_table('score_calibrations')
    with op.batch_alter_table('scores', schema=None) as batch_op:
        batch_op.drop_column('misconceptions')
        batch_op.drop_column('doubt')
        batch_op.drop_column('confidence')
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.drop_column('misconceptions')
