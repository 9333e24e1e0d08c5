"""participants' languages from their responses; the bot's username, remembered

Earlier versions stored a participant's language only when they picked one from a list, so
most people had none and were re-invited in the campaign's first language: each gets the
language of their latest response. `bot_profile` keeps the username getMe gave for a token
(under a hash of the token), so commands need not ask Telegram, or the officer, again.

Revision ID: 0007
Revises: 0003
Create Date: 2026-12-02 23:00:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        'bot_profile',
        sa.Column('token_hash', sa.String(length=64), nullable=False),
        sa.Column('username', sa.String(length=64), nullable=False),
        sa.Column('resolved_at', sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint('token_hash', name=op.f('pk_bot_profile')),
    )
    op.execute(
        "UPDATE participant SET language = (SELECT r.language FROM response r "
        "WHERE r.participant_id = participant.id ORDER BY r.started_at DESC, r.id DESC LIMIT 1) "
        "WHERE language IS NULL")


def downgrade() -> None:
    op.drop_table('bot_profile')
