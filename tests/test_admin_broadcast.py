"""Invitation broadcasts against the sandbox Bot API over HTTP, on SQLite and PostgreSQL.

Each recipient gets exactly one message in their own language; the rate never goes over the
limit in any one-second window; 429s are waited out; a 403 stops the participant; a run
cancelled or killed mid-way resumes without sending anyone a second copy.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select, update

from analysis.disclosure import MAX_NOISE
from bot.db import Database
from bot.models import AuditEvent, Broadcast, Delivery, Participant, Response, utcnow
from bot.sandbox import Limits, Sandbox, peak_rate
from bot.services.broadcasts import (
    NOT_KNOWN,
    Breakdown,
    InvitationFilters,
    plan_invitation,
    protect_reach,
    send_plan,
)
from bot.services.delivery import RateLimiter, worth_retrying
from bot.services.lease import SenderBusy, sender_lease
from tests.admin_world import (
    FIRST_USER,
    Someone,
    delivered,
    delivery_states,
    load_open,
    people,
    sandbox_bot,
    seed,
    sends,
)

pytestmark = pytest.mark.timeout(90)
BOT = "coassess_sandbox_bot"
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
async def sandbox() -> AsyncIterator[Sandbox]:
    async with Sandbox() as sb:
        yield sb


async def invite(db: Database, keys, bot, campaign, filters=None, **options):  # type: ignore[no-untyped-def]
    async with db.session() as s:
        plan = await plan_invitation(s, campaign, filters or InvitationFilters(), "test", BOT)
    summary = await send_plan(db, keys, bot, plan, "test", campaign.id, **options)
    return plan, summary


async def test_each_once_in_own_language_within_the_rate(db, keys, example_spec, sandbox,  # type: ignore[no-untyped-def]
                                                         monkeypatch) -> None:
    sent_at: list[float] = []  # the sender's own clock, as its limiter counts sends
    record = RateLimiter.record

    def spy(self, chat, now):  # type: ignore[no-untyped-def]
        sent_at.append(now)
        record(self, chat, now)

    monkeypatch.setattr(RateLimiter, "record", spy)
    campaign = await load_open(db, example_spec)
    crowd = people(44, languages=("en", "ar", "so", "de"))
    crowd += [Someone(FIRST_USER + 100, "uk", consented_hours_ago=1, completed=True),  # took part
              Someone(FIRST_USER + 101, "es", stopped=True)]                           # said /stop
    await seed(db, keys, campaign.id, crowd, sandbox)
    bot = sandbox_bot(sandbox)
    try:
        plan, summary = await invite(db, keys, bot, campaign)  # the default: 25 a second
    finally:
        await bot.session.close()
    assert plan.created and summary.sent == 44 and summary.total == 44
    calls = await sends(sandbox)
    counts = await delivered(sandbox)
    assert set(counts) == {p.user_id for p in crowd[:44]} and set(counts.values()) == {1}
    assert len(calls) == 44 and all(c["ok"] for c in calls)
    # never more than 25 in any second as sent, evenly spaced; at the Bot API, network jitter
    # may move a send into the next second, within Telegram's 30 (the sandbox's limit): no 429
    assert len(sent_at) == 44 and peak_rate([{"time": t} for t in sent_at], 1.0) <= 25
    assert min(b - a for a, b in zip(sent_at, sent_at[1:], strict=False)) >= 0.02
    assert (await sandbox.client.stats())["served_429"] == 0
    by_chat = {int(c["chat_id"]): c["params"] for c in calls}
    arabic, german = by_chat[FIRST_USER + 1], by_chat[FIRST_USER + 3]
    assert "رأيك في مركز نورث ستريت الصحي" in arabic["text"]
    assert "Your say on North Street Health Centre" in german["text"]  # not offered: first language
    markup = arabic["reply_markup"]
    markup = json.loads(markup) if isinstance(markup, str) else markup
    assert markup["inline_keyboard"][0][0]["url"] == f"https://t.me/{BOT}?start=clinic-access"
    async with db.session() as s:
        b = (await s.scalars(select(Broadcast))).one()
        assert b.status == "done" and b.finished_at is not None and b.kind == "invitation"
        actions = [e.action for e in (await s.scalars(select(AuditEvent))).all()]
    assert actions == ["broadcast", "broadcast_sent"]


async def test_flood_limits_and_injected_429s(db, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    crowd = people(8)
    await seed(db, keys, campaign.id, crowd, sandbox)
    await sandbox.client.set_limits(global_per_second=4)  # the "server" is stricter than we are
    await sandbox.client.flood_next(2, method="sendMessage", retry_after=1)
    bot = sandbox_bot(sandbox)
    try:
        _, summary = await invite(db, keys, bot, campaign, rate=25)
    finally:
        await bot.session.close()
    stats = await sandbox.client.stats()
    assert stats["served_429"] >= 3  # the two injected, and at least one from the flood limit
    assert summary.sent == 8
    assert sorted((await delivered(sandbox)).values()) == [1] * 8


async def test_forbidden_marks_the_participant_stopped(db, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    crowd = people(4, languages=("en",))
    await seed(db, keys, campaign.id, crowd, sandbox)
    await sandbox.client.block(crowd[1].user_id)
    await sandbox.client.deactivate(crowd[2].user_id)
    bot = sandbox_bot(sandbox)
    try:
        _, summary = await invite(db, keys, bot, campaign)
        # a second, different broadcast leaves them out
        _, again = await invite(db, keys, bot, campaign, InvitationFilters.make(language="en"))
    finally:
        await bot.session.close()
    assert summary.sent == 2 and summary.stopped == 2
    async with db.session() as s:
        stopped = (await s.scalars(select(Participant).where(Participant.stopped))).all()
        assert len(stopped) == 2 and not any(p.allow_invitations for p in stopped)
        errors = (await s.scalars(select(Delivery.error).where(Delivery.state == "stopped"))).all()
    assert any("blocked" in e for e in errors) and any("deactivated" in e for e in errors)
    assert again.total == 2  # the two who can still be reached


async def test_cancelled_run_resumes_without_second_copies(db, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    crowd = people(30)
    await seed(db, keys, campaign.id, crowd, sandbox)
    bot = sandbox_bot(sandbox)
    try:
        first = asyncio.create_task(invite(db, keys, bot, campaign, rate=15))
        while len(await sends(sandbox)) < 8:
            await asyncio.sleep(0.02)
        first.cancel()  # Ctrl-C between (and during) sends
        with pytest.raises(asyncio.CancelledError):
            await first
        midway = await delivery_states(db)
        assert midway["pending"] > 0
        plan, summary = await invite(db, keys, bot, campaign, rate=25)
    finally:
        await bot.session.close()
    assert not plan.created and plan.recovered == midway["sending"]
    counts = await delivered(sandbox)
    assert max(counts.values()) == 1  # nobody twice
    whole = await delivery_states(db)
    assert whole["sent"] + whole["uncertain"] == 30 and summary.pending == 0
    # the second run's figures are its own: the people the first run left pending
    assert summary.sent == midway["pending"]
    # an uncertain row is one whose request was in flight: it may or may not have arrived
    assert len(counts) >= whole["sent"]


async def test_only_one_sender_at_a_time(db) -> None:  # type: ignore[no-untyped-def]
    async with sender_lease(db):
        with pytest.raises(SenderBusy, match="another coassess sender"):
            async with sender_lease(db):
                pass
    async with sender_lease(db):  # released
        pass


def _env(db_url: str, sb: Sandbox, keys) -> dict[str, str]:  # type: ignore[no-untyped-def]
    env = {k: v for k, v in os.environ.items() if not k.startswith("COASSESS_")}
    env.update(COASSESS_DATABASE_URL=db_url, COASSESS_BOT_TOKEN=sb.token,
               COASSESS_TELEGRAM_API_URL=sb.api_url, COASSESS_BOT_USERNAME=BOT,
               COASSESS_PSEUDONYM_KEY=keys.pseudonym_key.decode(),
               COASSESS_CONTACT_KEY=keys.contact_key.decode(), COASSESS_BROADCAST_RATE="12",
               COLUMNS="120", PYTHONUNBUFFERED="1")
    return env


async def _coassess(env: dict[str, str], *args: str) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT)


async def test_kill_9_then_the_same_command_resumes(tmp_path, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    # One backend is enough here: the cancelled-run test above covers both, and the lease
    # test below shows PostgreSQL lets go of a killed sender's lock.
    db_url = f"sqlite+aiosqlite:///{tmp_path}/killed.db"
    db = Database(db_url)
    await db.upgrade()
    try:
        await _kill_and_resume(db_url, db, keys, example_spec, sandbox)
    finally:
        await db.dispose()


async def _kill_and_resume(db_url, db, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    campaign = await load_open(db, example_spec)
    crowd = people(24)
    await seed(db, keys, campaign.id, crowd, sandbox)
    env = _env(db_url, sandbox, keys)
    proc = await _coassess(env, "broadcast", campaign.id)
    try:
        async with asyncio.timeout(40):
            while len(await sends(sandbox)) < 6:
                await asyncio.sleep(0.02)
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    assert proc.returncode == -signal.SIGKILL
    before = len(await sends(sandbox))
    assert before < 24, "the broadcast finished before it could be killed"

    again = await _coassess(env, "broadcast", campaign.id)
    out, _ = await asyncio.wait_for(again.communicate(), 60)
    text = out.decode()
    assert again.returncode == 0, text
    assert "Carrying on" in text and "sent" in text
    counts = await delivered(sandbox)
    assert max(counts.values()) == 1, "someone got a second copy"
    states = await delivery_states(db)
    assert states["pending"] == 0 and states["sending"] == 0
    assert states["sent"] + states["uncertain"] == 24 and states["uncertain"] <= 8
    assert len(counts) >= states["sent"]


HOLD_LEASE = """
import asyncio, sys
from bot.db import Database
from bot.services.lease import sender_lease

async def main():
    db = Database(sys.argv[1])
    async with sender_lease(db):
        print("held", flush=True)
        await asyncio.sleep(60)

asyncio.run(main())
"""


async def test_a_killed_senders_lease_is_free_at_once(db_url, db) -> None:  # type: ignore[no-untyped-def]
    proc = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD_LEASE, db_url, cwd=ROOT,
                                                stdout=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"held"
        with pytest.raises(SenderBusy):
            async with sender_lease(db):
                pass
    finally:
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
    for _ in range(50):  # the server notices the closed connection within moments
        try:
            async with sender_lease(db):
                return
        except SenderBusy:
            await asyncio.sleep(0.1)
    pytest.fail("the lease of a killed sender was not released")


@pytest.fixture
async def redis_url(tmp_path) -> AsyncIterator[str]:  # type: ignore[no-untyped-def]
    """A throwaway redis-server on a free port (skipped where Redis is not installed)."""
    import shutil
    import socket

    server = shutil.which("redis-server")
    if server is None:
        pytest.skip("redis-server is not installed")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = await asyncio.create_subprocess_exec(
        server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
        "--dir", str(tmp_path), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        from redis.asyncio import Redis

        client = Redis.from_url(url)
        for _ in range(100):
            try:
                await client.ping()
                break
            except Exception:  # noqa: BLE001 - still starting
                await asyncio.sleep(0.05)
        await client.aclose()
        yield url
    finally:
        proc.terminate()
        await proc.wait()


HOLD_REDIS_LEASE = HOLD_LEASE.replace("sender_lease(db)", "sender_lease(db, sys.argv[2])")


async def test_redis_lease_is_exclusive_and_taken_over_from_a_killed_sender(tmp_path, redis_url) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite+aiosqlite:///{tmp_path}/r.db"
    db = Database(url)
    try:
        async with sender_lease(db, redis_url):
            with pytest.raises(SenderBusy):
                async with sender_lease(db, redis_url):
                    pass
        proc = await asyncio.create_subprocess_exec(sys.executable, "-c", HOLD_REDIS_LEASE, url, redis_url,
                                                    cwd=ROOT, stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        assert (await asyncio.wait_for(proc.stdout.readline(), 30)).strip() == b"held"
        with pytest.raises(SenderBusy):
            async with sender_lease(db, redis_url):
                pass
        proc.send_signal(signal.SIGKILL)
        await proc.wait()
        async with sender_lease(db, redis_url):  # its key is still there, its process is not
            pass
    finally:
        await db.dispose()


async def test_dry_run_counts_per_language_and_group(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [
        Someone(FIRST_USER, "en", groups={"community": ["somali", "arabic"]}),
        Someone(FIRST_USER + 1, "ar", groups={"community": ["arabic"]}),
        Someone(FIRST_USER + 2, "de"),                                     # reads the first language
        Someone(FIRST_USER + 3, "so", consented_hours_ago=2, completed=True),  # took part already
        Someone(FIRST_USER + 4, "so", stopped=True),
    ])
    result = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run")
    out = result.output
    assert result.exit_code == 0, out
    # three people: the total is a small group too, shown as the tables show it
    assert "<10 people would receive the invitation" in out and "nothing was sent" in out
    assert "3 people" not in out
    # three people: every group is smaller than the campaign's min_group_size, so none is shown
    for row in ("en", "ar", "arabic", "somali", r"\(not known\)"):
        assert re.search(rf"│ {row}\s+│\s+<10 │", out), row
    assert re.search(r"│ uk\s+│\s+0 │", out)  # a zero identifies nobody
    assert "<10: fewer than 10 people, hidden to protect them" in out
    narrow = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run", "--group", "community=somali",
                       "--language", "en")
    assert "<10 people would receive" in narrow.output and "1 person" not in narrow.output
    bad = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run", "--language", "de")
    assert bad.exit_code == 1 and "'de' is not one of the campaign's languages" in bad.output
    async with db.session() as s:
        assert not (await s.scalars(select(Broadcast))).all()  # a dry run stores nothing


def _rows(output: str, title: str) -> dict[str, str]:
    """The rows of one of the dry run's tables, as {label: shown count}."""
    table = output[output.index(title):]
    table = table[:table.index("└")]
    return {m[0]: m[1] for m in re.findall(r"│ (\S[^│]*?)\s+│\s+(\S+) │", table)}


async def test_dry_run_total_gives_no_hidden_group_away(db_url, db, keys, example_spec) -> None:  # type: ignore[no-untyped-def]
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id,
               [Someone(FIRST_USER + i, "so", groups={"community": ["somali"]}) for i in range(5)]
               + [Someone(FIRST_USER + 100 + i, "en", groups={"community": ["arabic"]}) for i in range(12)])
    # The reviewer's case: "so <10" and every other language 0, under a total of 5.
    somali = await cli(db_url, keys, "broadcast", campaign.id, "--group", "community=somali",
                       "--language", "so", "--dry-run")
    out = somali.output
    assert somali.exit_code == 0, out
    assert "<10 people would receive the invitation to 'clinic-access' (nothing was sent)" in out
    assert not re.search(r"\b5 people", out)
    assert _rows(out, "by language") == {"en": "0", "ar": "0", "so": "<10", "uk": "0", "fa": "0", "es": "0"}
    # Everyone: 17 = 12 + a hidden 5, so one more count is hidden (here the 12) and the 5 stays
    # somewhere in 1..9 (it was printed as the total before).
    everyone = await cli(db_url, keys, "broadcast", campaign.id, "--dry-run")
    languages = _rows(everyone.output, "by language")
    assert languages["so"] == "<10" and languages["en"] == "c"
    total = re.search(r"(\d+) people would receive", everyone.output)
    assert total and abs(int(total.group(1)) - 17) <= MAX_NOISE  # perturbed (cell key method)


def test_protect_reach_hides_the_total_when_it_would_pin_a_hidden_row(example_spec) -> None:  # type: ignore[no-untyped-def]
    # 10 read English and 1 Somali: with the total shown as 11, "en c" (10 or more) and "so <10"
    # (1 to 9) could only be 10 and 1. The total is hidden ("c") rather than printed.
    groups = {d.id: Counter({NOT_KNOWN: 11}) for d in example_spec.groups}
    reach = protect_reach(Breakdown(11, Counter(en=10, so=1), groups), example_spec)
    languages = dict(reach.table("by language"))
    assert languages["so"] == "<10" and reach.hidden

    def values(shown: str) -> range:
        return range(1, 10) if shown == "<10" else range(10, 40) if shown == "c" else range(int(shown), int(shown) + 1)

    solutions = {(en, so) for total in values(reach.total) for en in values(languages["en"])
                 for so in values(languages["so"]) if en + so == total}
    assert len({so for _, so in solutions}) > 1  # the 1 cannot be worked out
    assert reach.total == "c"
    assert protect_reach(Breakdown(0, Counter(), {}), example_spec).total == "0"  # nobody: no one to hide


async def test_real_send_says_how_many_as_the_dry_run_does(db_url, db, keys, example_spec, sandbox) -> None:  # type: ignore[no-untyped-def]
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec)
    await seed(db, keys, campaign.id, [Someone(FIRST_USER + i, "so", groups={"community": ["somali"]})
                                       for i in range(3)], sandbox)
    api = {"COASSESS_BOT_TOKEN": sandbox.token, "COASSESS_TELEGRAM_API_URL": sandbox.api_url}
    result = await cli(db_url, keys, "broadcast", campaign.id, "--group", "community=somali", **api)
    assert result.exit_code == 0, result.output
    # the selection's size is protected; the result table counts messages, to run the send
    assert "Sending the invitation to <10 people" in result.output
    assert "3 people" not in result.output
    assert sum((await delivered(sandbox)).values()) == 3
    again = await cli(db_url, keys, "broadcast", campaign.id, "--group", "community=somali", "--dry-run")
    assert "This broadcast was started on" in again.output and "(<10 sent, 0 failed" in again.output


def test_only_passing_failures_are_worth_retrying() -> None:
    assert worth_retrying("TelegramServerError: Telegram server says - Internal Server Error")
    assert worth_retrying("TelegramRetryAfter: Telegram server says - Flood control exceeded")
    assert not worth_retrying("TelegramBadRequest: Telegram server says - Bad Request: chat not found")
    assert not worth_retrying("TelegramForbiddenError: bot was blocked by the user")
    assert not worth_retrying("TelegramNetworkError: HTTP Client says - Request timeout error")
    assert not worth_retrying(None) and not worth_retrying("")


async def test_retry_failed_sends_again_only_after_passing_failures(db_url, db, keys, example_spec,  # type: ignore[no-untyped-def]
                                                                    sandbox) -> None:
    from tests.test_admin_invites import cli

    campaign = await load_open(db, example_spec)
    crowd = people(8, languages=("en",))
    crowd[2] = Someone(crowd[2].user_id, "en", consented_hours_ago=1)  # started; finishes later
    await seed(db, keys, campaign.id, crowd, sandbox)
    # in send order (one worker): three 500s, a 400, a send that arrives after our timeout
    # (uncertain), then someone who blocked the bot
    await sandbox.client.fail_next(3, method="sendMessage")
    await sandbox.client.fail_next(1, method="sendMessage", status=400,
                                   description="Bad Request: chat not found")
    await sandbox.client.hang_next(1, method="sendMessage", seconds=1.5)
    await sandbox.client.block(crowd[5].user_id)
    bot = sandbox_bot(sandbox)
    try:
        _, first = await invite(db, keys, bot, campaign, workers=1, max_attempts=1, request_timeout=1,
                                rate=100, per_chat_interval=0)
    finally:
        await bot.session.close()
    assert first.counts == {"sent": 2, "failed": 4, "uncertain": 1, "stopped": 1}
    async with asyncio.timeout(10):  # the late send lands
        while crowd[4].user_id not in await delivered(sandbox):
            await asyncio.sleep(0.05)
    # since then: one of the 500s said /stop, another finished the survey
    async with db.session() as s:
        pid = {p.pseudonym: p.id for p in (await s.scalars(select(Participant))).all()}
        stopped, finished = pid[keys.pseudonym(crowd[1].user_id)], pid[keys.pseudonym(crowd[2].user_id)]
        await s.execute(update(Participant).where(Participant.id == stopped)
                        .values(stopped=True, allow_invitations=False))
        await s.execute(update(Response).where(Response.participant_id == finished)
                        .values(completed_at=utcnow()))
        await s.commit()

    api = {"COASSESS_BOT_TOKEN": sandbox.token, "COASSESS_TELEGRAM_API_URL": sandbox.api_url}
    result = await cli(db_url, keys, "broadcast", campaign.id, "--retry-failed", **api)
    assert result.exit_code == 0, result.output
    assert "Trying again for 1 person" in result.output
    counts = await delivered(sandbox)
    # the one 500 still wanted got it once; the uncertain one was not sent again
    assert counts == {crowd[0].user_id: 1, crowd[4].user_id: 1, crowd[6].user_id: 1, crowd[7].user_id: 1}
    assert await delivery_states(db) == {"sent": 3, "failed": 3, "uncertain": 1, "stopped": 1}

    again = await cli(db_url, keys, "broadcast", campaign.id, "--retry-failed", **api)
    assert again.exit_code == 0 and "nobody to try again" in again.output, again.output
    assert sum((await delivered(sandbox)).values()) == 4
    other = await cli(db_url, keys, "broadcast", campaign.id, "--retry-failed", "--only-unfinished", **api)
    assert other.exit_code == 1 and "no invitation to 'clinic-access' with these options" in other.output
    async with db.session() as s:
        actions = [e.action for e in (await s.scalars(select(AuditEvent).order_by(AuditEvent.id))).all()]
    assert actions.count("broadcast_retry") == 1 and actions[0] == "broadcast"
