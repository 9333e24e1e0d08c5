"""participation tallies: running totals of the people who agreed, kept by database triggers

Revision ID: 0008
Revises: 0006
Create Date: 2026-12-04 04:00:00

The console's live participation (bot.services.participation) reads these few dozen rows instead
of counting every response at each request. Triggers on `response` and `response_group` keep them
exact in the same transaction as the change, whatever writes it (the bot, the CLI, an erasure
cascading from a participant, an invite deleted). Each response counts in the shard of its id
(SHARDS rows per cell), so participants agreeing at the same moment rarely wait on one row.

Alembic's batch mode on SQLite copies a table to a new one: a later migration that alters
`response` or `response_group` in batch mode drops these triggers and must create them again
(`create_triggers`); tests/test_participation_tallies.py fails if they are missing.
"""
from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = '0008'
down_revision = '0006'
branch_labels = None
depends_on = None

SHARDS = 16  # bot.services.participation.TALLY_SHARDS

_COLS = "campaign_id, kind, dimension_id, value, shard, n, key_sum"
_UPSERT = ("ON CONFLICT (campaign_id, kind, dimension_id, value, shard) DO UPDATE SET "
           "n = participation_tally.n + excluded.n, "
           "key_sum = participation_tally.key_sum + excluded.key_sum")


def _add_response(r: str) -> list[str]:
    """Statements adding response `r` (NEW) to the tallies: every response to `reached` (and to
    `completed` once finished), per invite; the rest only if it has consent."""
    return [
        f"""INSERT INTO participation_tally ({_COLS})
        VALUES ({r}.campaign_id, 'reached', '', COALESCE(CAST({r}.invite_id AS TEXT), ''), {r}.id % {SHARDS}, 1,
                COALESCE({r}.record_key, 0))
        {_UPSERT}""",
        f"""INSERT INTO participation_tally ({_COLS})
        SELECT {r}.campaign_id, 'completed', '', COALESCE(CAST({r}.invite_id AS TEXT), ''), {r}.id % {SHARDS}, 1,
               COALESCE({r}.record_key, 0)
        WHERE {r}.completed_at IS NOT NULL
        {_UPSERT}""",
        f"""INSERT INTO participation_tally ({_COLS})
        SELECT {r}.campaign_id, k.kind, '', k.value, {r}.id % {SHARDS}, 1, COALESCE({r}.record_key, 0)
        FROM (SELECT 'agreed' AS kind, '' AS value
              UNION ALL SELECT 'language', {r}.language
              UNION ALL SELECT 'invite', COALESCE(CAST({r}.invite_id AS TEXT), '')
              UNION ALL SELECT 'finished', '' WHERE {r}.completed_at IS NOT NULL) AS k
        WHERE {r}.consented_at IS NOT NULL
        {_UPSERT}""",
        f"""INSERT INTO participation_tally ({_COLS})
        SELECT {r}.campaign_id, 'groups', g.dimension_id, CAST(g.groups AS TEXT), {r}.id % {SHARDS}, 1,
               COALESCE({r}.record_key, 0)
        FROM response_group AS g
        WHERE g.response_id = {r}.id AND {r}.consented_at IS NOT NULL
        {_UPSERT}""",
    ]


def _remove_response(r: str) -> list[str]:
    """Statements taking response `r` (OLD) out of the tallies (all but `reached` and `completed`
    only if it had consent): its rows exist, since adding it made them."""
    minus = f"n = n - 1, key_sum = key_sum - COALESCE({r}.record_key, 0)"
    return [
        f"""UPDATE participation_tally SET {minus}
        WHERE campaign_id = {r}.campaign_id AND shard = {r}.id % {SHARDS} AND dimension_id = ''
          AND (kind = 'reached' OR (kind = 'completed' AND {r}.completed_at IS NOT NULL))
          AND value = COALESCE(CAST({r}.invite_id AS TEXT), '')""",
        f"""UPDATE participation_tally SET {minus}
        WHERE {r}.consented_at IS NOT NULL AND campaign_id = {r}.campaign_id
          AND shard = {r}.id % {SHARDS} AND dimension_id = ''
          AND ((kind = 'agreed' AND value = '')
               OR (kind = 'language' AND value = {r}.language)
               OR (kind = 'invite' AND value = COALESCE(CAST({r}.invite_id AS TEXT), ''))
               OR (kind = 'finished' AND value = '' AND {r}.completed_at IS NOT NULL))""",
        f"""UPDATE participation_tally SET {minus}
        WHERE {r}.consented_at IS NOT NULL AND campaign_id = {r}.campaign_id
          AND shard = {r}.id % {SHARDS} AND kind = 'groups'
          AND (dimension_id, value) IN (SELECT g.dimension_id, CAST(g.groups AS TEXT)
                                        FROM response_group AS g WHERE g.response_id = {r}.id)""",
    ]


def _add_group(g: str) -> str:
    """Add group answer `g` (NEW) to the tallies, if its response has consent."""
    return f"""INSERT INTO participation_tally ({_COLS})
        SELECT r.campaign_id, 'groups', {g}.dimension_id, CAST({g}.groups AS TEXT), r.id % {SHARDS}, 1,
               COALESCE(r.record_key, 0)
        FROM response AS r WHERE r.id = {g}.response_id AND r.consented_at IS NOT NULL
        {_UPSERT}"""


def _remove_group(g: str) -> str:
    """Take group answer `g` (OLD) out, if its response (still there, with consent) counted it.
    When the response itself is deleted, its BEFORE DELETE trigger has already taken it out and
    the cascade that deletes the group answer finds no response: nothing is taken twice."""
    return f"""UPDATE participation_tally
        SET n = n - 1,
            key_sum = key_sum - (SELECT COALESCE(r.record_key, 0) FROM response AS r WHERE r.id = {g}.response_id)
        WHERE kind = 'groups' AND dimension_id = {g}.dimension_id AND value = CAST({g}.groups AS TEXT)
          AND (campaign_id, shard) IN (SELECT r.campaign_id, r.id % {SHARDS} FROM response AS r
                                       WHERE r.id = {g}.response_id AND r.consented_at IS NOT NULL)"""


_RESPONSE_COLUMNS = "consented_at, completed_at, language, invite_id, record_key, campaign_id, id"
TRIGGERS = ("participation_tally_response_insert", "participation_tally_response_update",
            "participation_tally_response_delete", "participation_tally_group_insert",
            "participation_tally_group_update", "participation_tally_group_delete")


def _sqlite_triggers() -> list[str]:
    def body(statements: list[str]) -> str:
        return "BEGIN\n" + ";\n".join(statements) + ";\nEND"

    changed = (" OR ".join(f"OLD.{c} IS NOT NEW.{c}" for c in ("language", "invite_id", "record_key",
                                                                 "campaign_id", "id"))
               + " OR (OLD.consented_at IS NULL) <> (NEW.consented_at IS NULL)"
               + " OR (OLD.completed_at IS NULL) <> (NEW.completed_at IS NULL)")
    return [
        f"CREATE TRIGGER participation_tally_response_insert AFTER INSERT ON response "
        f"{body(_add_response('NEW'))}",
        f"CREATE TRIGGER participation_tally_response_update AFTER UPDATE OF {_RESPONSE_COLUMNS} "
        f"ON response WHEN {changed} {body([*_remove_response('OLD'), *_add_response('NEW')])}",
        f"CREATE TRIGGER participation_tally_response_delete BEFORE DELETE ON response "
        f"{body(_remove_response('OLD'))}",
        f"CREATE TRIGGER participation_tally_group_insert AFTER INSERT ON response_group "
        f"{body([_add_group('NEW')])}",
        f"CREATE TRIGGER participation_tally_group_update AFTER UPDATE OF groups, dimension_id, response_id "
        f"ON response_group WHEN OLD.groups IS NOT NEW.groups OR OLD.dimension_id IS NOT NEW.dimension_id "
        f"OR OLD.response_id IS NOT NEW.response_id {body([_remove_group('OLD'), _add_group('NEW')])}",
        f"CREATE TRIGGER participation_tally_group_delete AFTER DELETE ON response_group "
        f"{body([_remove_group('OLD')])}",
    ]


def _postgresql_triggers() -> list[str]:
    def block(statements: list[str]) -> str:
        return ";\n".join(statements) + ";"

    changed = (" OR ".join(f"OLD.{c} IS DISTINCT FROM NEW.{c}"
                           for c in ("language", "invite_id", "record_key", "campaign_id", "id"))
               + " OR (OLD.consented_at IS NULL) <> (NEW.consented_at IS NULL)"
               + " OR (OLD.completed_at IS NULL) <> (NEW.completed_at IS NULL)")
    return [
        f"""CREATE FUNCTION participation_tally_response() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN
            {block(_remove_response('OLD'))}
          END IF;
          IF TG_OP <> 'DELETE' THEN
            {block(_add_response('NEW'))}
            RETURN NEW;
          END IF;
          RETURN OLD;
        END $$""",
        f"""CREATE FUNCTION participation_tally_group() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
          IF TG_OP <> 'INSERT' THEN
            {_remove_group('OLD')};
          END IF;
          IF TG_OP <> 'DELETE' THEN
            {_add_group('NEW')};
          END IF;
          RETURN NULL;
        END $$""",
        "CREATE TRIGGER participation_tally_response_insert AFTER INSERT ON response FOR EACH ROW "
        "EXECUTE FUNCTION participation_tally_response()",
        f"CREATE TRIGGER participation_tally_response_update AFTER UPDATE OF {_RESPONSE_COLUMNS} "
        f"ON response FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION participation_tally_response()",
        "CREATE TRIGGER participation_tally_response_delete BEFORE DELETE ON response FOR EACH ROW "
        "EXECUTE FUNCTION participation_tally_response()",
        "CREATE TRIGGER participation_tally_group_insert AFTER INSERT ON response_group FOR EACH ROW "
        "EXECUTE FUNCTION participation_tally_group()",
        "CREATE TRIGGER participation_tally_group_update AFTER UPDATE OF groups, dimension_id, response_id "
        "ON response_group FOR EACH ROW WHEN (CAST(OLD.groups AS TEXT) IS DISTINCT FROM CAST(NEW.groups AS TEXT) "
        "OR OLD.dimension_id IS DISTINCT FROM NEW.dimension_id OR OLD.response_id IS DISTINCT FROM NEW.response_id) "
        "EXECUTE FUNCTION participation_tally_group()",
        "CREATE TRIGGER participation_tally_group_delete AFTER DELETE ON response_group FOR EACH ROW "
        "EXECUTE FUNCTION participation_tally_group()",
    ]


def create_triggers(dialect: str) -> list[str]:
    """The DDL of the triggers that keep `participation_tally` exact, for this database."""
    return _postgresql_triggers() if dialect == "postgresql" else _sqlite_triggers()


def drop_triggers(dialect: str) -> list[str]:
    out = [f"DROP TRIGGER IF EXISTS {t}" + (f" ON {'response_group' if 'group' in t else 'response'}"
                                           if dialect == "postgresql" else "") for t in TRIGGERS]
    if dialect == "postgresql":
        out += ["DROP FUNCTION IF EXISTS participation_tally_response()",
                "DROP FUNCTION IF EXISTS participation_tally_group()"]
    return out


# the tallies of the responses already there, as the triggers would have made them
BACKFILL = [
    f"""INSERT INTO participation_tally ({_COLS})
    SELECT campaign_id, kind, '', value, shard, count(*), sum(key) FROM (
      SELECT campaign_id, 'reached' AS kind, COALESCE(CAST(invite_id AS TEXT), '') AS value,
             id % {SHARDS} AS shard, COALESCE(record_key, 0) AS key
        FROM response
      UNION ALL SELECT campaign_id, 'completed', COALESCE(CAST(invite_id AS TEXT), ''), id % {SHARDS},
                       COALESCE(record_key, 0)
        FROM response WHERE completed_at IS NOT NULL
      UNION ALL SELECT campaign_id, 'agreed', '', id % {SHARDS}, COALESCE(record_key, 0)
        FROM response WHERE consented_at IS NOT NULL
      UNION ALL SELECT campaign_id, 'finished', '', id % {SHARDS}, COALESCE(record_key, 0)
        FROM response WHERE consented_at IS NOT NULL AND completed_at IS NOT NULL
      UNION ALL SELECT campaign_id, 'language', language, id % {SHARDS}, COALESCE(record_key, 0)
        FROM response WHERE consented_at IS NOT NULL
      UNION ALL SELECT campaign_id, 'invite', COALESCE(CAST(invite_id AS TEXT), ''), id % {SHARDS},
                       COALESCE(record_key, 0)
        FROM response WHERE consented_at IS NOT NULL) AS each_response
    GROUP BY campaign_id, kind, value, shard""",
    f"""INSERT INTO participation_tally ({_COLS})
    SELECT r.campaign_id, 'groups', g.dimension_id, CAST(g.groups AS TEXT), r.id % {SHARDS}, count(*),
           sum(COALESCE(r.record_key, 0))
    FROM response_group AS g JOIN response AS r ON r.id = g.response_id
    WHERE r.consented_at IS NOT NULL
    GROUP BY r.campaign_id, g.dimension_id, CAST(g.groups AS TEXT), r.id % {SHARDS}""",
]


def upgrade() -> None:
    op.create_table('participation_tally',
    sa.Column('campaign_id', sa.String(length=40), nullable=False),
    sa.Column('kind', sa.String(length=12), nullable=False),
    sa.Column('dimension_id', sa.String(length=24), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('shard', sa.Integer(), nullable=False),
    sa.Column('n', sa.BigInteger(), nullable=False),
    sa.Column('key_sum', sa.BigInteger(), nullable=False),
    sa.ForeignKeyConstraint(['campaign_id'], ['campaign.id'], name=op.f('fk_participation_tally_campaign_id_campaign'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('campaign_id', 'kind', 'dimension_id', 'value', 'shard', name=op.f('pk_participation_tally'))
    )
    dialect = op.get_bind().dialect.name
    for statement in BACKFILL:
        op.execute(statement)
    for statement in create_triggers(dialect):
        op.execute(statement)


def downgrade() -> None:
    for statement in drop_triggers(op.get_bind().dialect.name):
        op.execute(statement)
    op.drop_table('participation_tally')
