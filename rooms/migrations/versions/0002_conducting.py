"""conducting: questions, topic checks, notes

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op


revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('interview_questions',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interview_id', sa.Integer(), nullable=False),
    sa.Column('position', sa.Integer(), nullable=False),
    sa.Column('question_id', sa.Integer(), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], name=op.f('fk_interview_questions_interview_id_interviews'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['question_id'], ['questions.id'], name=op.f('fk_interview_questions_question_id_questions')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_interview_questions')),
    sa.UniqueConstraint('interview_id', 'position', name=op.f('uq_interview_questions_interview_id'))
    )
    op.create_table('notes',
    sa.Column('interview_id', sa.Integer(), nullable=False),
    sa.Column('text', sa.Text(), nullable=False),
    sa.Column('updated_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], name=op.f('fk_notes_interview_id_interviews'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('interview_id', name=op.f('pk_notes'))
    )
    op.create_table('topic_checks',
    sa.Column('id', sa.Integer(), nullable=False),
    sa.Column('interview_id', sa.Integer(), nullable=False),
    sa.Column('topic_id', sa.Integer(), nullable=False),
    sa.Column('checked_at', sa.DateTime(), nullable=False),
    sa.ForeignKeyConstraint(['interview_id'], ['interviews.id'], name=op.f('fk_topic_checks_interview_id_interviews'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['topic_id'], ['topics.id'], name=op.f('fk_topic_checks_topic_id_topics')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_topic_checks')),
    sa.UniqueConstraint('interview_id', 'topic_id', name=op.f('uq_topic_checks_interview_id'))
    )
    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.add_column(sa.Column('current_question', sa.Integer(), nullable=True))



def downgrade() -> None:
    with op.batch_alter_table('interviews', schema=None) as batch_op:
        batch_op.drop_column('current_question')

    op.drop_table('topic_checks')
    op.drop_table('notes')
    op.drop_table('interview_questions')
