"""Voice-note audio: not kept by default; kept encrypted when switched on; erased with /forget."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from bot.db import Database
from bot.models import Answer, VoiceAudio
from bot.pseudonym import ContactCipher
from bot.sandbox import Limits
from tests.live import CONTACT_KEY, live_bot

FAST = Limits(global_per_second=None, per_chat_per_second=None)


async def _to_idea(client, uid: int, spec) -> None:  # type: ignore[no-untyped-def]
    """Walk one person to the open question (barrier 'hours' shows it) by callback data."""
    await client.create_user(uid, language_code="en")
    sent = await client.send_command(uid, "start", spec.id)
    steps = [("y", None), ("g", "0.somali"), ("d", None), ("g", "1.25_64"), ("g", "2.no"), ("c", None),
             ("r", "1.4"), ("o", "2.no"), ("o", "3.hours"), ("o", "4.phone"), ("d", None),
             ("o", "5.online"), ("o", "5.evening"), ("o", "5.waiting"), *[("b", "6.+online")] * 10, ("d", None)]
    reply = await client.wait_for_bot(uid, after=sent, timeout=15)
    for widget, item in steps:
        message = reply.last
        data = next(b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row
                    if b["callback_data"].endswith("\x1d" + widget + (f":{item}" if item else "")))
        sent = await client.tap(uid, message["message_id"], data=data)
        reply = await client.wait_for_bot(uid, after=sent, timeout=15)


@pytest.mark.parametrize("keep", [False, True])
async def test_voice_audio_is_opt_in_and_encrypted(db_url: str, example_spec, tmp_path: Path, keep: bool) -> None:  # type: ignore[no-untyped-def]
    audio = b"OggS" + bytes(range(256)) * 8
    async with live_bot(db_url, example_spec, tmp_path, limits=FAST, store_voice_audio=keep) as live:
        client = live.sandbox.client
        uid = 612_000_001
        await _to_idea(client, uid, example_spec)
        sent = await client.send_voice(uid, duration=9, data=audio)
        await client.wait_for_bot(uid, after=sent, timeout=15)
        db = Database(db_url)
        async with db.session() as s:
            assert await s.scalar(select(func.count()).select_from(Answer).where(Answer.question_id == "idea")) == 1
            rows = (await s.scalars(select(VoiceAudio))).all()
        if keep:
            assert len(rows) == 1 and audio not in rows[0].ciphertext
            assert ContactCipher(CONTACT_KEY.encode()).decrypt_bytes(rows[0].ciphertext) == audio
            sent = await client.send_command(uid, "forget")
            reply = await client.wait_for_bot(uid, after=sent, timeout=15)
            msg = reply.last
            data = next(b["callback_data"] for row in msg["reply_markup"]["inline_keyboard"] for b in row
                        if b["callback_data"].endswith("\x1dy"))
            sent = await client.tap(uid, msg["message_id"], data=data)
            await client.wait_for_bot(uid, after=sent, timeout=15)
            async with db.session() as s:
                assert await s.scalar(select(func.count()).select_from(VoiceAudio)) == 0
        else:
            assert rows == []
        await db.dispose()
