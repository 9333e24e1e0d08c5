"""an index on response.participant_id

Every update looks up the participant's unfinished responses, and erasing a participant
cascades through their responses: both scanned the whole table without it.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28 20:30:00
"""
from __future__ import annotations

from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index('ix_response_participant', 'response', ['participant_id'], unique=False)


def downgrade() -> None:
    op.drop_index('ix_response_participant', table_name='response')
