"""No Telegram id, name, username or phone number anywhere but the encrypted contact table, nor in logs."""

from __future__ import annotations

import json
import logging

from sqlalchemy import inspect, text

from bot.models import Base
from tests.participants import Person
from tests.test_dialog_survey import complete_example, world  # noqa: F401 - fixture

USER_ID = 7391028465
FIRST, LAST, USERNAME = "Zamzamtest", "Qorsheeyetest", "zamzam_qtest"
PHONE = "+252615550199"


async def dump_database(db) -> str:  # type: ignore[no-untyped-def]
    """Every value of every table as text (bytes as hex and latin-1), for scanning."""
    out = []
    async with db.engine.connect() as conn:
        tables = await conn.run_sync(lambda c: inspect(c).get_table_names())
        for table in tables:
            rows = (await conn.execute(text(f'SELECT * FROM "{table}"'))).all()
            for row in rows:
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        raw = bytes(value)
                        out.append(raw.hex())
                        out.append(raw.decode("latin-1"))
                    else:
                        out.append(json.dumps(value, default=str, ensure_ascii=False) if not isinstance(value, str)
                                   else value)
    return "\n".join(out)


async def test_no_identifier_in_any_table_or_log(world, db, caplog) -> None:  # type: ignore[no-untyped-def]
    caplog.set_level(logging.DEBUG)
    dp, mm, bot = world
    p = Person(dp, mm, bot, user_id=USER_ID, language_code="so", first_name=FIRST)
    p.client.user = p.client.user.model_copy(update={"last_name": LAST, "username": USERNAME})
    await complete_example(p)
    await p.tap_button("y")
    await p.send("/privacy")
    await p.send(f"my number is {PHONE}")
    await p.send("/stop")
    dump = await dump_database(db)
    assert len(dump) > 1000  # the scan really read the data
    assert set(Base.metadata.tables) <= {t for t in Base.metadata.tables}
    for needle in (str(USER_ID), FIRST, LAST, USERNAME, PHONE, PHONE[1:]):
        assert needle not in dump, f"{needle} found in the database"
        assert needle not in caplog.text, f"{needle} found in the logs"
    assert "[phone]" in dump  # the phone number in the free text was replaced
