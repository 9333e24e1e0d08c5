"""Issue 15, points 3 to 6: each send reports its own figures, a dry run tells the real run's
truth, /admin either sends (and audits) or says why not, and `remind` names the scheduler."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from aiogram.methods import SendMessage
from aiogram_dialog.test_tools import MockMessageManager
from sqlalchemy import select

from bot.models import AuditEvent, utcnow
from bot.runtime.app import BotConfig, build_dispatcher
from bot.services.broadcasts import InvitationFilters, plan_invitation, send_plan
from bot.services.scheduler import send_due_reminders
from bot.settings import Settings
from tests.admin_world import FIRST_USER, Someone, delivered, load_open, seed
from tests.participants import Person, RecordingBot

pytestmark = pytest.mark.timeout(120)
SETTINGS = Settings(_env_file=None, bot_username="CouncilSurveyBot", broadcast_rate=100,
                    broadcast_per_chat_interval=0)
ADMIN = 777_101


async def audit_rows(db, action: str) -> list[AuditEvent]:  # type: ignore[no-untyped-def]
    async with db.session() as s:
        return list((await s.scalars(select(AuditEvent).where(AuditEvent.action == action)
                                     .order_by(AuditEvent.id))).all())


async def test_each_reminder_run_reports_its_own_figures(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec, reminder_after_hours=48.0)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en", consented_hours_ago=50) for i in range(4)]
               + [Someone(FIRST_USER + 10 + i, "en", consented_hours_ago=10) for i in range(2)])
    bot = RecordingBot()
    first = await send_due_reminders(db, keys, bot, settings=SETTINGS)
    assert first.summaries[campaign.id].sent == 4
    later = utcnow() + timedelta(hours=40)
    second = await send_due_reminders(db, keys, bot, settings=SETTINGS, now=later)
    # two more were due; the four of the first run are not this run's
    assert second.summaries[campaign.id].sent == 2
    assert second.summaries[campaign.id].counts == {"sent": 2}
    runs = await audit_rows(db, "remind_sent")
    assert [(e.details["run"], e.details["sent"]) for e in runs] == [(1, 4), (2, 2)]


async def test_an_invitation_resumed_counts_only_what_this_run_sent(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en") for i in range(5)])
    async with db.session() as s:
        plan = await plan_invitation(s, campaign, InvitationFilters(), "test", "Bot")
    # the first run is cut short after two messages
    bot = RecordingBot()
    sent: list[str] = []

    def stop_after_two(state: str) -> None:
        sent.append(state)
        if len(sent) == 2:
            raise asyncio.CancelledError

    with pytest.raises(asyncio.CancelledError):
        await send_plan(db, keys, bot, plan, "test", campaign.id, rate=100, per_chat_interval=0,
                        on_result=stop_after_two, workers=1)
    async with db.session() as s:
        plan = await plan_invitation(s, campaign, InvitationFilters(), "test", "Bot")
    summary = await send_plan(db, keys, bot, plan, "test", campaign.id, rate=100, per_chat_interval=0)
    assert summary.sent == 3 and not summary.pending
    runs = await audit_rows(db, "broadcast_sent")
    assert [(e.details["run"], e.details.get("sent", 0)) for e in runs] == [(1, 2), (2, 3)]


async def test_a_dry_run_after_the_send_tells_the_real_runs_truth(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.sandbox import Sandbox
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec)
    async with Sandbox() as sb:
        await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en") for i in range(12)], sb)
        api = {"COASSESS_BOT_TOKEN": sb.token, "COASSESS_TELEGRAM_API_URL": sb.api_url}
        before = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run")
        assert "12 people would receive" in before.output, before.output
        sent = await cli(db_url, keys, "broadcast", campaign.id, **api)
        assert sent.exit_code == 0, sent.output
        assert sum((await delivered(sb)).values()) == 12
        dry = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run")
        real = await cli(db_url, keys, "broadcast", campaign.id, **api)
    assert "Nothing left to send" in real.output, real.output
    assert "0 people would receive" in dry.output and "12 people would" not in dry.output, dry.output
    assert "12 sent" in dry.output and "nothing left to send" in dry.output.lower()


async def test_admin_send_after_a_cli_send_says_nothing_is_left(db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from dialogs.admin import start_broadcast

    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en") for i in range(6)])
    bot = RecordingBot()
    async with db.session() as s:
        plan = await plan_invitation(s, campaign, InvitationFilters(), "cli:officer", "CouncilSurveyBot")
    await send_plan(db, keys, bot, plan, "cli:officer", campaign.id, rate=100, per_chat_interval=0)
    mm = MockMessageManager()
    dp = build_dispatcher(db, keys, message_manager=mm,
                          config=BotConfig(dedupe=False, admin_ids=frozenset({ADMIN}),
                                           bot_username="CouncilSurveyBot"))
    admin = Person(dp, mm, bot, ADMIN, language_code="en")
    await admin.send("/admin")
    await admin.tap_item("A_c", "clinic-access")
    await admin.tap_button("A_b")
    # the same truth as the real run: nothing left, and no button that would pretend to send
    assert "will go to" not in admin.text
    assert "already" in admin.text and "A_y" not in " ".join(admin.button_data())
    # had the officer pressed send anyway (two officers at once): nothing sent, said so, no old figures
    calls = len(bot.calls)
    task = start_broadcast(db, keys, bot, campaign, username="CouncilSurveyBot", actor=keys.admin(ADMIN),
                           chat_id=ADMIN, lang="en", settings=SETTINGS)
    await task
    told = [m.text for m in bot.calls[calls:] if isinstance(m, SendMessage)]
    assert len(told) == 1 and int(bot.calls[-1].chat_id) == ADMIN
    assert "Nothing was sent" in told[0] and "Sent: 6" not in told[0], told[0]


async def test_remind_says_when_the_bots_scheduler_will_send_them(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.sandbox import Sandbox
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec, reminder_after_hours=1.0)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en", consented_hours_ago=0.5) for i in range(3)])
    async with Sandbox() as sb:
        api = {"COASSESS_BOT_TOKEN": sb.token, "COASSESS_TELEGRAM_API_URL": sb.api_url}
        result = await cli(db_url, keys, "remind", campaign.id, **api)
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "No reminders are due right now" in out
    # when the next ones fall due, and that the running bot sends them by itself
    assert "fall due" in out and "the running bot" in out.lower(), out


async def test_an_outcome_dry_run_after_the_send_counts_what_is_left(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from bot.services.broadcasts import plan_outcome
    from bot.services.outcomes import check_outcome_file, store_outcome
    from tests.conftest import ROOT
    from tests.test_admin_invites import cli

    example = ROOT / "examples" / "outcome-clinic-access.yaml"
    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en", consented_hours_ago=3, completed=True,
                                               wants_outcome=True) for i in range(12)])
    check = check_outcome_file(example, example_spec)
    async with db.session() as s:
        outcome, _ = await store_outcome(s, campaign.id, check.spec)
        plan = await plan_outcome(s, campaign, outcome, "test")
    await send_plan(db, keys, RecordingBot(), plan, "test", campaign.id, rate=100, per_chat_interval=0)
    dry = await cli(db_url, keys, "outcome", "send", campaign.id, str(example), "--dry-run")
    out = " ".join(dry.output.split())
    assert dry.exit_code == 0, out
    assert "0 people would receive 'spring-2026'" in out and "12 people would" not in out, out
    assert "(12 sent, 0 failed" in out and "nothing left to send" in out


async def test_remind_prints_this_runs_figures(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    import re

    from bot.sandbox import Sandbox
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec, reminder_after_hours=48.0)
    async with Sandbox() as sb:
        await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "en", consented_hours_ago=50) for i in range(4)], sb)
        api = {"COASSESS_BOT_TOKEN": sb.token, "COASSESS_TELEGRAM_API_URL": sb.api_url}
        first = await cli(db_url, keys, "remind", campaign.id, **api)
        await seed(db, keys, campaign.id, [Someone(FIRST_USER + 10 + i, "en", consented_hours_ago=50)
                                           for i in range(2)], sb)
        second = await cli(db_url, keys, "remind", campaign.id, **api)
    assert first.exit_code == 0 and second.exit_code == 0, first.output + second.output

    def sent(output: str) -> str:
        # the summary table's row: sent, failed, stopped, skipped, uncertain
        return re.findall(r"│\s+(\d+)\s+│\s+\d+\s+│\s+\d+\s+│\s+\d+\s+│\s+\d+\s+│", output)[-1]

    assert sent(first.output) == "4"
    assert sent(second.output) == "2", second.output
