"""spoken screens: voice notes per campaign screen, the listening choice, and responses heard

Revision ID: 0006
Revises: 0004
Create Date: 2026-12-02 22:50:00
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import bot.models

revision = '0006'
down_revision = '0005'  # 0003 → 0007 → 0004 → 0005 → 0006 (chained when the branches were merged)
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('voice_note',
    sa.Column('key', sa.String(length=64), nullable=False),
    sa.Column('data', sa.LargeBinary(), nullable=False),
    sa.Column('seconds', sa.Float(), nullable=False),
    sa.Column('source', sa.String(length=12), nullable=False),
    sa.Column('file_id', sa.String(length=200), nullable=True),
    sa.Column('created_at', bot.models.UTCDateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('key', name=op.f('pk_voice_note'))
    )
    op.create_table('spoken_screen',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('language', sa.String(length=16), nullable=False),
    sa.Column('screen', sa.String(length=80), nullable=False),
    sa.Column('note_key', sa.String(length=64), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_spoken_screen_campaign_id_campaign'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['note_key'], ['voice_note.key'], name=op.f('fk_spoken_screen_note_key_voice_note'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'language', 'screen', name=op.f('pk_spoken_screen'))
    )
    with op.batch_alter_table('participant') as batch:
        batch.add_column(sa.Column('listen', sa.Boolean(), server_default='0', nullable=False))
    with op.batch_alter_table('response') as batch:
        batch.add_column(sa.Column('listened', sa.Boolean(), server_default='0', nullable=False))


def downgrade() -> None:
    with op.batch_alter_table('response') as batch:
        batch.drop_column('listened')
    with op.batch_alter_table('participant') as batch:
        batch.drop_column('listen')
    op.drop_table('spoken_screen')
    op.drop_table('voice_note')
