"""record keys for the cell key method

Each response (and each participant, for dry runs of people who have not answered) gets a
random key; a published count's perturbation is fixed by the sum of its records' keys
(analysis.disclosure). Existing rows get keys here, from the operating system's random source.

Revision ID: 0004
Revises: 0007
Create Date: 2026-12-02 22:45:00
"""
from __future__ import annotations

import secrets

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0007'  # chained after main's 0007 when main was merged (assigned: after 0003)
branch_labels = None
depends_on = None

MODULUS = 2 ** 31  # bot.models.RECORD_KEY_MODULUS when this revision was written


def _fill(table: str) -> None:
    conn = op.get_bind()
    t = sa.table(table, sa.column('id', sa.Integer), sa.column('record_key', sa.Integer))
    ids = [r[0] for r in conn.execute(sa.select(t.c.id).where(t.c.record_key.is_(None)))]
    for start in range(0, len(ids), 5000):
        conn.execute(t.update().where(t.c.id == sa.bindparam('rid')).values(record_key=sa.bindparam('key')),
                     [{'rid': i, 'key': secrets.randbelow(MODULUS)} for i in ids[start:start + 5000]])


def upgrade() -> None:
    for table in ('response', 'participant'):
        op.add_column(table, sa.Column('record_key', sa.Integer(), nullable=True))
        _fill(table)


def downgrade() -> None:
    for table in ('participant', 'response'):
        with op.batch_alter_table(table) as batch:
            batch.drop_column('record_key')
