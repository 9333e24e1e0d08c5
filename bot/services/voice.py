"""Keeping the audio of voice-note answers: off by default, encrypted when on, erased with /forget."""

from __future__ import annotations

import io
import logging

from aiogram import Bot
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Answer, VoiceAudio
from bot.services.participants import Keys

log = logging.getLogger(__name__)

MAX_AUDIO_BYTES = 20 * 1024 * 1024  # the Bot API's own download limit


async def keep_audio(session: AsyncSession, bot: Bot, keys: Keys, response_id: int, question_id: str,
                     file_id: str) -> bool:
    """Download a voice note and store it encrypted beside its answer. False if it could not be kept."""
    answer = await session.scalar(select(Answer).where(Answer.response_id == response_id,
                                                       Answer.question_id == question_id))
    if answer is None:
        return False
    try:
        buffer = io.BytesIO()
        await bot.download(file_id, destination=buffer)
        data = buffer.getvalue()
    except Exception as exc:  # noqa: BLE001 - the answer (file id, duration) is kept either way
        log.warning("could not download a voice note (%s); its file id and length are kept",
                    exc.__class__.__name__)
        return False
    if not data or len(data) > MAX_AUDIO_BYTES:
        return False
    row = await session.get(VoiceAudio, answer.id) or VoiceAudio(answer_id=answer.id)
    row.ciphertext = keys.cipher.encrypt_bytes(data)
    row.size = len(data)
    session.add(row)
    return True
