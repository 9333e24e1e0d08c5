"""1,000 citizens at once through the sandbox Bot API over HTTP: nothing lost, nothing doubled, no error logged."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from bot.campaigns.check import check_file
from bot.pseudonym import pseudonym
from bot.sandbox import Limits, Sandbox, SandboxClient
from bot.simulation import Citizen, make_personas
from tests.conftest import ROOT, create_pg_database, drop_pg_database
from tests.faults import start_bot_process, stop
from tests.live import CONTACT_KEY, PSEUDONYM_KEY, assert_stored_equals_sent, prepare_campaign, stored_by_person

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1200)]
CITIZENS = int(os.environ.get("COASSESS_LOAD_CITIZENS", "1000"))


async def test_a_thousand_citizens_at_once(tmp_path: Path) -> None:
    spec = check_file(ROOT / "tests" / "data" / "short-campaign.yaml").spec
    assert spec is not None
    db_url = await create_pg_database()
    try:
        await prepare_campaign(db_url, spec)
        people = make_personas(spec, CITIZENS, seed=1000, start_id=700_000_001)
        for p in people:
            p.blocks, p.stop_after = False, None
        # Telegram's per-chat limit applies; the global one does not limit replies to 1,000 people.
        async with Sandbox(limits=Limits(global_per_second=None, per_chat_per_second=1.0, per_chat_burst=3)) as sb:
            env = {"COASSESS_DATABASE_URL": db_url, "COASSESS_BOT_TOKEN": sb.token,
                   "COASSESS_TELEGRAM_API_URL": sb.api_url, "COASSESS_PSEUDONYM_KEY": PSEUDONYM_KEY,
                   "COASSESS_CONTACT_KEY": CONTACT_KEY, "COASSESS_LOG_LEVEL": "WARNING",
                   "COASSESS_CONCURRENCY": "256"}
            log = tmp_path / "bot.log"
            proc = start_bot_process(["run", "--journal", str(tmp_path / "journal.db")], env, log)
            # one process simulates all 1,000 people: give its control calls time under that load
            client = SandboxClient(sb.base_url, timeout=300)
            try:
                results = await asyncio.gather(*(
                    Citizen(client, spec, p, think=(0.5, 2.0), timeout=240).run() for p in people))
            finally:
                await client.close()
                assert stop(proc) == 0
        stored = await stored_by_person(db_url, None)
        checked = assert_stored_equals_sent(results, stored, lambda uid: pseudonym(PSEUDONYM_KEY.encode(), uid))
        assert sum(r.finished for r in results) == CITIZENS
        assert checked == CITIZENS * len(spec.questions)
        text = log.read_text()
        assert "ERROR" not in text and "Traceback" not in text, text[-3000:]
    finally:
        await drop_pg_database(db_url)
