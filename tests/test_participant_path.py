"""The participant's path under double taps, stray input, second thoughts and edits, through the
sandbox Bot API over HTTP: what the person sees, what is stored, and no Bot API error."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.db import Database
from bot.models import Contact, Participant, Response
from bot.pseudonym import pseudonym
from bot.sandbox import Limits
from bot.sandbox.client import SandboxError, SentUpdate
from tests.live import PSEUDONYM_KEY, Live, live_bot, stored_by_person


class Talk:
    """One person's chat with the live bot, read and tapped by callback data."""

    def __init__(self, live: Live, user_id: int, lang: str = "en") -> None:
        self.live, self.client, self.user_id, self.lang = live, live.sandbox.client, user_id, lang
        self.taps: list[str] = []

    async def start(self, payload: str = "clinic-access") -> None:
        await self.client.create_user(self.user_id, first_name="Amina", language_code=self.lang)
        await self.wait(await self.client.send_command(self.user_id, "start", payload))

    async def wait(self, sent: SentUpdate) -> None:
        try:
            await self.client.wait_for_bot(self.user_id, after=sent, timeout=10, idle=0.15)
        except SandboxError as exc:  # the bot may rightly show nothing new
            if exc.status != 408:
                raise
        await self.settle()

    async def settle(self) -> None:
        """Until every update sent so far is processed."""
        for _ in range(400):
            if not await self.client.pending_updates() and not self.live.runtime.journal.counts().get("pending"):
                return
            await asyncio.sleep(0.025)
        raise AssertionError("updates still pending")

    async def screen(self) -> dict[str, Any]:
        return (await self.client.bot_messages(self.user_id))[-1]

    async def text(self) -> str:
        return (await self.screen())["text"] or ""

    async def data(self, suffix: str, message: dict[str, Any] | None = None) -> str:
        message = message or await self.screen()
        for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                if (b.get("callback_data") or "").endswith("\x1d" + suffix):
                    return b["callback_data"]
        raise LookupError(f"no button {suffix!r} on {message.get('text', '')[:60]!r}")

    async def tap(self, suffix: str, *, wait: bool = True, message: dict[str, Any] | None = None) -> SentUpdate:
        message = message or await self.screen()
        sent = await self.client.tap(self.user_id, message["message_id"], data=await self.data(suffix, message))
        assert sent.callback_query_id
        self.taps.append(sent.callback_query_id)
        if wait:
            await self.wait(sent)
        return sent

    async def send(self, text: str) -> None:
        await self.wait(await self.client.send_text(self.user_id, text))

    async def to_question(self, index: int = 1) -> None:
        """Consent, the three groups, the welcome; then the answers up to question `index`."""
        await self.tap("y")
        for item in ("g:0.prefer_not_to_say", "g:1.over64", "g:2.yes"):
            await self.tap(item)
        await self.tap("c")
        if index >= 2:
            await self.tap("r:1.4")

    async def errors(self, forged: tuple[str, ...] = ()) -> list[tuple[str, str]]:
        """The Bot API calls that failed (answers to `forged` taps aside: the sandbox never issued
        those query ids, so it calls them too old, as Telegram would)."""
        return [(c["method"], c.get("description") or c.get("error") or "")
                for c in await self.client.calls() if not c.get("ok")
                and c.get("params", {}).get("callback_query_id") not in forged]

    async def unanswered(self) -> list[str]:
        return [q for q in self.taps if not (await self.client.callback(q))["answered"]]


# Telegram's flood limits are tested elsewhere; here every Bot API error would be the bot's own.
FREE = Limits(global_per_second=None, per_chat_per_second=None)


def pseudo(user_id: int) -> str:
    return pseudonym(PSEUDONYM_KEY.encode(), user_id)


async def test_double_taps_store_only_the_first_and_cause_no_bot_api_error(db_url: str, example_spec,
                                                                          tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_001)
        await p.start()
        # consent tapped twice before the bot answered
        first = await p.tap("y", wait=False)
        await p.tap("y", wait=False)
        await p.wait(first)
        for item in ("g:0.prefer_not_to_say", "g:1.over64", "g:2.yes"):
            await p.tap(item)
        await p.tap("c")
        assert "2/8" in await p.text()
        # rating 4, then (the same screen, before the bot edited it) 2: the second is another question's
        q1 = await p.screen()
        await p.tap("r:1.4", wait=False)
        second = await p.tap("r:1.2", wait=False, message=q1)
        await p.wait(second)
        assert "3/8" in await p.text()
        notice = (await p.client.callback(second.callback_query_id))["answer"]["text"]
        assert notice and "question" in notice
        assert (await stored_by_person(db_url, None))[pseudo(p.user_id)]["ease"] == {"value": 4}
        # the same value twice: nothing to say
        q2 = await p.screen()
        await p.tap("o:2.yes", wait=False)
        again = await p.tap("o:2.yes", wait=False, message=q2)
        await p.wait(again)
        assert not (await p.client.callback(again.callback_query_id))["answer"]["text"]
        # a tap that changes nothing (a rank choice already taken, twice) and Done twice
        await p.tap("o:3.hours")
        await p.tap("o:4.phone")
        done_screen = await p.screen()
        await p.tap("d", wait=False)
        await p.tap("d", wait=False, message=done_screen)
        await p.settle()
        assert "6/" in await p.text()
        rank = await p.screen()
        await p.tap("o:5.online", wait=False)
        twice = await p.tap("o:5.online", wait=False, message=rank)
        await p.wait(twice)
        assert (await p.text()).count("Online") == 1
        errors = await p.errors()
        assert not errors, errors
        assert not await p.unanswered()


async def test_taps_on_a_finished_survey_and_made_up_data_cause_no_error(db_url: str, example_spec,
                                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_002)
        await p.start()
        await p.tap("n")  # not now
        assert "change your mind" in await p.text()
        await p.start()  # and again: yes this time, to the end screen
        await p.to_question(2)
        # the "tell me what comes of it" question, reached by skipping where allowed
        for _ in range(40):
            screen = await p.screen()
            data = [b.get("callback_data", "") for r in (screen.get("reply_markup") or {}).get(
                "inline_keyboard", []) for b in r]
            short = [d.split("\x1d", 1)[-1] for d in data]
            if "y" in short and "n" in short:
                break
            for pick in ("s", "d", "o:2.yes", "o:4.phone", "o:5.online", "o:5.evening", "o:5.waiting",
                         "b:6.+online"):
                if pick in short:
                    await p.tap(pick)
                    break
            else:
                raise AssertionError(f"stuck at {screen['text'][:80]!r} {short}")
        # stray texts at once on the "tell me what comes of it" screen: one copy, with the hint
        before = len(await p.client.bot_messages(p.user_id))
        sent = [await p.client.send_text(p.user_id, f"ok {i}") for i in range(8)]
        await p.wait(sent[0])  # one reply, to the first; then every update is processed
        assert len(await p.client.bot_messages(p.user_id)) == before + 1
        assert "Please answer with the buttons below." in await p.text()
        # made-up callback data on the screen's message (a modified app can send any)
        end = await p.screen()
        intent = (await p.data("y")).split("\x1d")[0]
        forged = []
        for i, data in enumerate(["nonsense", "\x1d", f"{intent}\x1dr:99.1", f"{intent}\x1dzz",
                                  f"{intent}\x1do:1.x", "start:nope"]):
            forged.append(f"forged{i}")
            await p.client.push_update("callback_query", {
                "id": forged[-1], "chat_instance": "c", "data": data,
                "from": {"id": p.user_id, "is_bot": False, "first_name": "Amina", "language_code": "en"},
                "message": {"message_id": end["message_id"], "date": 1_800_000_000, "text": "x",
                            "chat": {"id": p.user_id, "type": "private", "first_name": "Amina"}}})
        await p.settle()
        assert await p.text() == end["text"]  # the screen as it was
        calls = await p.client.calls(chat_id=None)
        answered = {c["params"].get("callback_query_id") for c in calls if c["method"] == "answerCallbackQuery"}
        assert set(forged) <= answered  # every tap answered (the sandbox knows no forged id: "too old")
        errors = await p.errors(tuple(forged))
        assert not errors, errors
        await p.tap("n", wait=False)
        late = await p.tap("y", wait=False, message=end)
        await p.wait(late)
        async with Database(db_url).session() as s:
            assert (await s.scalars(select(Response.wants_outcome))).one() is False  # the first answer holds
        assert "will not get more messages" in await p.text()
        errors = await p.errors(tuple(forged))
        assert not errors, errors
        assert not await p.unanswered()


async def test_declining_keeps_nothing_and_privacy_says_what_is_kept(db_url: str, example_spec,
                                                                    tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_003)
        await p.start()
        await p.tap("n")
        db = Database(db_url)
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Participant)) == 0
            assert await s.scalar(select(func.count()).select_from(Contact)) == 0
            from bot.services.broadcasts import InvitationFilters, invitation_recipients, load_candidates

            candidates = await load_candidates(s, example_spec.id)
            assert invitation_recipients(candidates, InvitationFilters.make(), example_spec.languages) == []
        await p.send("/privacy")
        privacy = " ".join(m["text"] for m in (await p.client.bot_messages(p.user_id))[-2:])
        assert "before you agree" in privacy.lower() and "after you agree" in privacy.lower()
        # a "yes" later in the same conversation still works
        await p.start()
        await p.to_question(2)
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Participant)) == 1
            assert await s.scalar(select(func.count()).select_from(Contact)) == 1
        await db.dispose()
        assert not await p.errors()


async def test_stray_input_gets_a_hint_and_a_burst_is_answered_once(db_url: str, example_spec,
                                                                   tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_004)
        await p.start()
        before = len(await p.client.bot_messages(p.user_id))
        sent = [await p.client.send_text(p.user_id, f"hello {i}") for i in range(8)]
        await p.wait(sent[0])  # one reply, to the first; then every update is processed
        after = await p.client.bot_messages(p.user_id)
        assert len(after) == before + 1  # one copy of the consent screen, not eight
        assert "Please answer with the buttons below." in after[-1]["text"]
        await p.tap("y")  # the buttons of the new copy work
        assert "About you" in await p.text()
        assert not await p.errors()


async def test_forget_then_cancel_returns_to_the_question_with_its_buttons(db_url: str, example_spec,
                                                                         tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_005)
        await p.start()
        await p.to_question(2)
        assert "3/8" in await p.text()
        await p.send("/forget")
        assert "cannot be undone" in await p.text()
        await p.tap("n")
        assert "3/8" in await p.text() and "Nothing was erased." in await p.text()
        await p.tap("o:2.yes")  # its buttons work
        assert "4/8" in await p.text()
        assert (await stored_by_person(db_url, None))[pseudo(p.user_id)]["got_help"] == {"value": "yes"}
        assert not await p.errors()


async def test_a_stale_tap_after_forget_answers_in_the_persons_language(db_url: str, example_spec,
                                                                        tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_006, lang="uk")
        await p.start()
        await p.to_question(2)
        await p.send("/forget")
        confirm = await p.screen()
        await p.tap("y", wait=False)
        late = await p.tap("y", wait=False, message=confirm)  # a double tap: the second finds nothing
        await p.wait(late)
        async with Database(db_url).session() as s:
            assert await s.scalar(select(func.count()).select_from(Participant)) == 0
        texts = [m["text"] for m in await p.client.bot_messages(p.user_id)]
        assert "/start" in texts[-1] and "This bot asks" not in texts[-1]  # the help, in Ukrainian
        assert not await p.unanswered()


async def test_an_edited_answer_replaces_the_stored_text_and_other_edits_are_ignored(
        db_url: str, example_spec, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_007)
        await p.start()
        await p.to_question(2)
        await p.tap("o:2.no")
        await p.tap("o:3.other")
        said = await p.client.send_text(p.user_id, "The stairs")
        await p.wait(said)
        assert "5/" in await p.text()

        async def edit(message_id: int | None, text: str) -> None:
            user = {"id": p.user_id, "is_bot": False, "first_name": "Amina", "language_code": "en"}
            pushed = await p.client.push_update("edited_message", {
                "message_id": message_id, "date": 1_800_000_000, "edit_date": 1_800_000_100,
                "chat": {"id": p.user_id, "type": "private", "first_name": "Amina"}, "from": user,
                "text": text})
            assert not pushed["filtered"], "the bot does not ask for edited_message"
            await p.settle()

        await edit(said.message_id, "The stairs, and no lift")
        barrier = (await stored_by_person(db_url, None))[pseudo(p.user_id)]["barrier"]
        assert barrier == {"option": "other", "text": "The stairs, and no lift"}
        await edit(said.message_id, "\u200b")  # an edit to nothing keeps the answer
        await edit(12345, "not an answer")      # not an answer: ignored
        assert (await stored_by_person(db_url, None))[pseudo(p.user_id)]["barrier"] == barrier
        assert not await p.errors()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)  # the storage paths are covered above on both
async def test_a_journey_in_each_of_the_14_languages_causes_no_bot_api_error(db_url: str, example_spec,
                                                                              tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from dataclasses import replace

    from bot.simulation import Citizen, make_personas
    from tests.test_i18n import SHIPPED, spec_in

    spec = spec_in(SHIPPED, example_spec)
    personas = [replace(p, language=lang, stop_after=None, blocks=False, declines=False)
                for p, lang in zip(make_personas(spec, len(SHIPPED), seed=16, start_id=9_200_001), SHIPPED,
                                   strict=True)]
    async with live_bot(db_url, spec, tmp_path, limits=FREE) as live:
        results = await asyncio.gather(*(Citizen(live.sandbox.client, spec, p).run() for p in personas))
        failed = [(c["method"], c.get("description")) for c in await live.sandbox.client.calls() if not c.get("ok")]
    assert [r.error for r in results if r.error] == []
    assert all(r.finished for r in results)
    assert not failed, failed


async def test_a_double_tap_on_continue_does_not_pass_the_next_screen_unseen(db_url: str, example_spec,
                                                                             tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from bot.campaigns.schema import Question

    second = Question.model_validate({"id": "second", "type": "info", "text": {"en": "A second screen to read."}})
    spec = example_spec.model_copy(update={"questions": [example_spec.questions[0], second,
                                                         *example_spec.questions[1:]]})
    async with live_bot(db_url, spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_008)
        await p.start()
        await p.tap("y")
        for item in ("g:0.prefer_not_to_say", "g:1.over64", "g:2.yes"):
            await p.tap(item)
        welcome = await p.screen()
        await p.tap("c", wait=False)
        twice = await p.tap("c", wait=False, message=welcome)
        await p.wait(twice)
        assert "A second screen to read." in await p.text()
        assert "second" not in (await stored_by_person(db_url, None))[pseudo(p.user_id)]
        await p.tap("c")  # its own Continue works
        assert "How easy" in await p.text() or "1 =" in await p.text()
        assert not await p.errors()
        assert not await p.unanswered()


async def test_a_tap_held_past_the_grace_is_answered_once_not_twice(db_url: str, example_spec, tmp_path: Path,
                                                                    monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Under load a tap can wait longer than the runtime's grace: the runtime then stops its spinner
    with "One moment…". The handler must not answer it again: Telegram refuses a second answer
    ("query is too old ... or query ID is invalid"), as a CI run under load showed."""
    import bot.runtime.pump as pump

    monkeypatch.setattr(pump, "CALLBACK_GRACE", 0.0)  # every tap waits "too long"
    async with live_bot(db_url, example_spec, tmp_path, limits=FREE) as live:
        p = Talk(live, 9_100_031)
        await p.start()
        await p.to_question(1)
        assert not await p.unanswered()
        assert not await p.errors()
