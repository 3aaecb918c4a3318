"""recruiter sessions kept server-side (revocable); account emails NFKC + casefold

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-08
"""

from __future__ import annotations

import unicodedata

import sqlalchemy as sa
from alembic import op


revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'recruiter_sessions',
        sa.Column('id', sa.Integer(), nullable=False),
        sa.Column('recruiter_id', sa.Integer(), nullable=False),
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('created_at', sa.DateTime(), nullable=False),
        sa.Column('last_used_at', sa.DateTime(), nullable=False),
        sa.Column('expires_at', sa.DateTime(), nullable=False),
        sa.Column('user_agent', sa.String(length=200), nullable=False, server_default=''),
        sa.Column('ip_address', sa.String(length=64), nullable=False, server_default=''),
        sa.ForeignKeyConstraint(['recruiter_id'], ['recruiters.id'], name=op.f('fk_recruiter_sessions_recruiter_id_recruiters'), ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('id', name=op.f('pk_recruiter_sessions')),
        sa.UniqueConstraint('token_hash', name=op.f('uq_recruiter_sessions_token_hash')),
    )
    with op.batch_alter_table('recruiter_sessions', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_recruiter_sessions_recruiter_id'), ['recruiter_id'], unique=False)

    # Accounts are now looked up by NFKC + casefold of the address (rooms.accounts): bring the
    # stored ones to that form, unless two accounts would then collide (left as they are).
    connection = op.get_bind()
    recruiters = sa.table('recruiters', sa.column('id', sa.Integer), sa.column('email', sa.String))
    rows = list(connection.execute(sa.select(recruiters.c.id, recruiters.c.email)))
    taken = {email for _, email in rows}
    for recruiter_id, email in rows:
        folded = unicodedata.normalize('NFKC', email).casefold()
        if folded != email and folded not in taken:
            connection.execute(
                recruiters.update().where(recruiters.c.id == recruiter_id).values(email=folded)
            )
            taken.add(folded)


def downgrade() -> None:
    with op.batch_alter_table('recruiter_sessions', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_recruiter_sessions_recruiter_id'))
    op.drop_table('recruiter_sessions')
