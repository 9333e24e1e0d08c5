"""one-time sign-in links to the officers' web console (hashed tokens)

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02 22:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from bot.models import UTCDateTime

revision = '0005'
down_revision = '0004'  # assigned: after 0003; 0004 follows main's 0007 since the merges
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'web_sign_in',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('role', sa.String(length=12), nullable=False),
        sa.Column('actor', sa.String(length=80), nullable=False),
        sa.Column('invite_id', sa.Integer(), nullable=True),
        sa.Column('created_at', UTCDateTime(), nullable=False),
        sa.Column('expires_at', UTCDateTime(), nullable=False),
        sa.Column('used_at', UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(['invite_id'], ['invite.id'], name=op.f('fk_web_sign_in_invite_id_invite'),
                                ondelete='CASCADE'),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_web_sign_in')),
    )


def downgrade() -> None:
    op.drop_table('web_sign_in')
