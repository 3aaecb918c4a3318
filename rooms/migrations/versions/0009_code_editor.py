"""coding questions (questions.kind, questions.code), the shared code's edit log, code results

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0009'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.add_column(
            sa.Column('kind', sa.String(length=16), nullable=False, server_default='talk')
        )
        batch_op.add_column(sa.Column('code', sa.JSON(), nullable=True))
    op.create_table(
        'code_edits',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('interview_id', sa.Integer(), nullable=False),
        sa.Column('at', sa.DateTime(), nullable=False),
        sa.Column('role', sa.String(length=16), nullable=False),
        sa.Column('update', sa.LargeBinary(), nullable=False),
        sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], name=op.f('fk_code_edits_interview_id_interviews'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_code_edits')),
    )
    with op.batch_alter_table('code_edits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_code_edits_interview_id'), ['interview_id'], unique=False)
    op.create_table(
        'code_results',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('interview_id', sa.Integer(), nullable=False),
        sa.Column('position', sa.Integer(), nullable=False),
        sa.Column('visible', sa.JSON(), nullable=True),
        sa.Column('hidden', sa.JSON(), nullable=True),
        sa.Column('updated_at', sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], name=op.f('fk_code_results_interview_id_interviews'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_code_results')),
        sa.UniqueConstraint('interview_id', 'position', name=op.f('uq_code_results_interview_id')),
    )


def downgrade() -> None:
    op.drop_table('code_results')
    with op.batch_alter_table('code_edits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_code_edits_interview_id'))
    op.drop_table('code_edits')
    with op.batch_alter_table('questions', schema=None) as batch_op:
        batch_op.drop_column('code')
        batch_op.drop_column('kind')
