"""Hostile input against the dialogs (hypothesis): random taps, texts, stickers, voice notes, forged
callback data, Back and Skip, in random languages. No exception escapes; every stored answer is
valid for its question; never more than one answer per question per response."""

from __future__ import annotations

import asyncio
import logging
import tempfile
from pathlib import Path
from typing import Any

from aiogram.types import Location, Sticker
from aiogram_dialog.test_tools import MockMessageManager
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from bot.campaigns.flow import validate_answer
from bot.campaigns.store import load_campaign
from bot.db import Database, upgrade_sync
from bot.models import Answer, Response
from bot.runtime.app import BotConfig, build_dispatcher
from bot.services.participants import Keys
from dialogs.context import forget_cached_campaigns
from locales import available
from tests.conftest import EXAMPLE
from tests.participants import Person, RecordingBot

_DB = Path(tempfile.mkdtemp(prefix="coassess-fuzz-")) / "fuzz.db"
URL = f"sqlite+aiosqlite:///{_DB}"
KEYS = Keys(b"fuzz-pseudonym-key-0123456789abcdef", b"fuzz-contact-key-0123456789abcdef")
_users = iter(range(900_000_001, 999_999_999))

# The honest path through every question type; a scenario starts after a random prefix of it.
HONEST: list[tuple[str, str | None]] = [
    ("y", None), ("g", "0.somali"), ("d", None), ("g", "1.25_64"), ("g", "2.no"), ("c", None),
    ("r", "1.4"), ("o", "2.no"), ("o", "3.hours"), ("o", "4.phone"), ("d", None),
    ("o", "5.online"), ("o", "5.evening"), ("o", "5.waiting"),
    *[("b", "6.+interpreters")] * 10, ("d", None),
]

action = st.one_of(
    st.tuples(st.just("tap"), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.integers(0, 40)),
    st.tuples(st.just("advance"), st.integers(0, 40)),
    st.tuples(st.just("forged"), st.text(max_size=70)),
    st.tuples(st.just("forged_item"), st.sampled_from(["r", "R", "o", "b", "g", "l", "k", "s", "d", "u", "c", "y", "n"]),
              st.text(alphabet="0123456789.+-=_abcdefghijklmnopqrstuvwxyz", max_size=30)),
    st.tuples(st.just("text"), st.text(max_size=2100)),
    st.tuples(st.just("sticker"), st.none()),
    st.tuples(st.just("voice"), st.integers(0, 600)),
    st.tuples(st.just("location"), st.none()),
    st.tuples(st.just("command"), st.sampled_from(
        ["/start clinic-access", "/start clinic-access_mosque", "/start", "/language", "/privacy", "/help",
         "/stop", "/start nope_x", "/start " + "a" * 80, "/forget"])),
)


class ErrorCatcher(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def _prepare() -> None:
    if _DB.exists():
        return
    upgrade_sync(URL)

    async def load() -> None:
        from bot.campaigns.check import check_file

        db = Database(URL)
        async with db.session() as s:
            c, _ = await load_campaign(s, check_file(EXAMPLE).spec)
            c.status = "open"
            await s.commit()
        await db.dispose()

    asyncio.run(load())


async def _scenario(lang: str | None, actions: list[tuple[str, Any]], prefix: int = 0) -> None:
    forget_cached_campaigns()
    db = Database(URL)
    mm, bot = MockMessageManager(), RecordingBot()
    dp = build_dispatcher(db, KEYS, message_manager=mm, config=BotConfig(dedupe=False))
    p = Person(dp, mm, bot, user_id=next(_users), language_code=lang)
    try:
        await p.send("/start clinic-access")
        for widget, item in HONEST[:prefix]:
            try:
                await (p.tap_item(widget, item) if item else p.tap_button(widget))
            except ValueError:  # a language whose picker came first: the prefix ends early
                break
        for kind, arg, *rest in actions:
            has_message = any(m.chat.id == p.user_id and (m.text or m.caption) for m in mm.sent_messages)
            if kind == "tap" and has_message and p.button_data():
                data = p.button_data()[arg % len(p.button_data())]
                await p.raw_callback(data)
            elif kind == "advance" and has_message and p.button_data():
                # a person who mostly moves forward: anything but Back, Undo and "not now"
                forward = [d for d in p.button_data() if d.split("\x1d")[-1] not in {"k", "u", "n"}]
                if forward:
                    await p.raw_callback(forward[arg % len(forward)])
                elif "d" not in p.button_data():
                    await p.send("My answer, with a phone +44 7700 900123")
            elif kind == "forged" and has_message:
                await p.raw_callback(arg or "x")
            elif kind == "forged_item" and has_message and p.button_data():
                intent = p.button_data()[0].split("\x1d")[0]
                await p.raw_callback(f"{intent}\x1d{arg}:{rest[0]}"[:64])
            elif kind == "text":
                await p.send(arg or ".")
            elif kind == "sticker":
                await p.send_update(sticker=Sticker(file_id="s", file_unique_id="s", type="regular", width=1,
                                                    height=1, is_animated=False, is_video=False))
            elif kind == "voice":
                await p.send_voice(arg)
            elif kind == "location":
                await p.send_update(location=Location(latitude=1.0, longitude=2.0))
            elif kind == "command":
                await p.send(arg)
        await _check_invariants(db)
        reached.update(await _answered_types(db))
    finally:
        await db.dispose()


reached: set[str] = set()


async def _answered_types(db: Database) -> set[str]:
    async with db.session() as s:
        return set((await s.scalars(select(Answer.question_id))).all())


async def _check_invariants(db: Database) -> None:
    from bot.campaigns.check import check_file

    spec = check_file(EXAMPLE).spec
    async with db.session() as s:
        rows = (await s.execute(select(Answer.response_id, Answer.question_id, Answer.status, Answer.value))).all()
        dupes = (await s.execute(select(Answer.response_id, Answer.question_id, func.count())
                                 .group_by(Answer.response_id, Answer.question_id)
                                 .having(func.count() > 1))).all()
        responses = (await s.execute(select(Response.campaign_id, Response.participant_id, func.count())
                                     .group_by(Response.campaign_id, Response.participant_id)
                                     .having(func.count() > 1))).all()
    assert not dupes and not responses
    for _rid, qid, status, value in rows:
        q = spec.question(qid)
        if status == "skipped":
            assert value is None and q.optional
        else:
            assert status == "answered"
            assert validate_answer(q, value) == value


@settings(max_examples=35, deadline=None, suppress_health_check=list(HealthCheck))
@given(lang=st.sampled_from(available() + ["de", "zz", None]), prefix=st.integers(0, len(HONEST)),
       actions=st.lists(action, min_size=5, max_size=50))
def test_random_hostile_sequences_never_break_the_dialogs(lang: str | None, prefix: int, actions: list[Any]) -> None:
    _prepare()
    catcher = ErrorCatcher()
    logging.getLogger().addHandler(catcher)
    try:
        asyncio.run(_scenario(lang, actions, prefix))  # an exception escaping the dispatcher fails here
    finally:
        logging.getLogger().removeHandler(catcher)
    assert not catcher.records, [r.getMessage() for r in catcher.records]


def test_the_fuzz_reached_the_questions() -> None:
    """Runs after the property test: it must have got past consent and groups into the questions."""
    wanted = {"welcome", "ease", "barrier", "order"}
    if not wanted <= reached:  # hypothesis draws anew each run: some draws stop before "order"
        _prepare()
        asyncio.run(_scenario("en", [("advance", i) for i in range(60)]))
    assert wanted <= reached
