"""Spoken screens: made once when a campaign is loaded, stored by what they say, uploaded to Telegram once."""

from __future__ import annotations

import asyncio
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

from aiogram import Bot
from aiogram.types import BufferedInputFile
from sqlalchemy import delete, select
from sqlalchemy.orm import defer
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.audio import AudioError, make_note, note_key, offline_voice, screens
from bot.campaigns.schema import CampaignSpec
from bot.models import SpokenScreen, VoiceNote

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What `prepare` did: notes made now, notes already made (same text), screens with no audio."""

    made: int = 0
    reused: int = 0
    silent: dict[str, int] = field(default_factory=dict)  # language -> screens nothing can speak
    seconds: float = 0.0  # time spent making notes


async def prepare(session: AsyncSession, spec: CampaignSpec, base_dir: Path) -> Prepared:
    """Make (or find) the voice note of every screen of `spec` in every language, and link them.

    Runs at `campaign load`, never while someone answers. Synthesis and encoding run in a
    worker thread; a note whose texts and recordings are unchanged is found by its key and reused.
    """
    import time

    done = Prepared()
    await session.execute(delete(SpokenScreen).where(SpokenScreen.campaign_id == spec.id))
    for lang in spec.languages:
        voice = await asyncio.to_thread(offline_voice, lang)
        for screen in await asyncio.to_thread(screens, spec, lang, base_dir):
            key = await asyncio.to_thread(note_key, screen, voice)
            if key is None:
                done.silent[lang] = done.silent.get(lang, 0) + 1
                continue
            if await session.get(VoiceNote, key) is None:
                started = time.perf_counter()
                made = cached(key)
                if made is None:
                    try:
                        made = await asyncio.to_thread(make_note, screen, voice)
                    except AudioError as exc:  # `campaign check` names the file; loading goes on without it
                        log.warning("no voice note for screen %s in %s: %s", screen.key, lang, exc)
                        done.silent[lang] = done.silent.get(lang, 0) + 1
                        continue
                    keep(key, *made)
                data, seconds, source = made
                done.seconds += time.perf_counter() - started
                session.add(VoiceNote(key=key, data=data, seconds=seconds, source=source))
                await session.flush()
                done.made += 1
            else:
                done.reused += 1
            session.add(SpokenScreen(campaign_id=spec.id, language=lang, screen=screen.key, note_key=key))
    await session.flush()
    return done


def cache_dir() -> Path | None:
    """Where made notes are kept by key across databases (COASSESS_VOICE_CACHE; 'off': nowhere)."""
    setting = os.environ.get("COASSESS_VOICE_CACHE")
    if setting is not None and setting.lower() in {"", "0", "off", "no"}:
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "coassess" / "voice-notes"


def cached(key: str) -> tuple[bytes, float, str] | None:
    """A note made before with this key (the same texts, voice and recordings), from the cache folder."""
    folder = cache_dir()
    if folder is None:
        return None
    for file in folder.glob(f"{key}.*.ogg"):
        _, millis, source, _ = file.name.split(".")
        try:
            return file.read_bytes(), int(millis) / 1000, source
        except OSError:
            return None
    return None


def keep(key: str, data: bytes, seconds: float, source: str) -> None:
    """Keep a made note in the cache folder (best effort: a read-only home only costs time)."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        partial = folder / f".{key}.partial"
        partial.write_bytes(data)
        partial.replace(folder / f"{key}.{round(seconds * 1000)}.{source}.ogg")
    except OSError as exc:
        log.info("voice notes are not cached (%s)", exc.__class__.__name__)


async def find(session: AsyncSession, campaign_id: str, lang: str, screen: str) -> VoiceNote | None:
    """The voice note of a screen, without its bytes (once uploaded, only its file_id is sent)."""
    return await session.scalar(
        select(VoiceNote).options(defer(VoiceNote.data))
        .join(SpokenScreen, SpokenScreen.note_key == VoiceNote.key)
        .where(SpokenScreen.campaign_id == campaign_id, SpokenScreen.language == lang,
               SpokenScreen.screen == screen))


async def send(bot: Bot, session: AsyncSession, chat_id: int, note: VoiceNote) -> None:
    """Send a voice note: its Telegram file_id when it was uploaded before, else the file (once)."""
    if note.file_id:
        voice: str | BufferedInputFile = note.file_id
    else:
        data = await session.scalar(select(VoiceNote.data).where(VoiceNote.key == note.key))
        voice = BufferedInputFile(data or b"", filename="voice.ogg")
    message = await bot.send_voice(chat_id, voice, duration=max(1, round(note.seconds)))
    if note.file_id is None and message.voice is not None:
        note.file_id = message.voice.file_id
