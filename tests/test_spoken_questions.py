"""Issue 17: people who cannot read can listen. Every screen as a voice note, through the sandbox:
recordings in two languages (Somali, Tigrinya), the offline voice (espeak-ng) in two others."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import av
import numpy as np
import pytest
from sqlalchemy import select

from bot.campaigns.audio import RATE, synthesize
from bot.campaigns.check import check_file
from bot.campaigns.store import load_and_open
from bot.db import Database
from bot.models import Response
from bot.sandbox import Limits
from tests.live import live_bot

FAST = Limits(global_per_second=None, per_chat_per_second=None)

CAMPAIGN = """\
id: voice-check
mode: coassessment
languages: [so, ti, ar, es]
title: {so: Ra'yigaaga, ti: ርእይቶኻ, ar: رأيك, es: Su opinión}
intro: {so: Su'aalo gaagaaban., ti: ሓጸርቲ ሕቶታት።, ar: بعض الأسئلة القصيرة., es: Unas preguntas cortas.}
intro_audio: {so: audio/intro-so.wav, ti: audio/intro-ti.m4a}
questions:
  - id: ease
    type: rating
    text: {so: Sidee bay u fududayd?, ti: ክንደይ ቀሊል ነይሩ?, ar: ما مدى سهولة الحصول على موعد؟, es: ¿Qué tan fácil fue conseguir una cita?}
    labels: {so: [Aad u adag, Aad u fudud], ti: [ኣዝዩ ከቢድ, ኣዝዩ ቀሊል], ar: [صعب جدا, سهل جدا], es: [Muy difícil, Muy fácil]}
    audio: {so: audio/ease-so.wav, ti: audio/ease-ti.mp3}
  - id: help
    type: choice
    text: {so: Caawimaad ma heshay?, ti: ሓገዝ ረኺብካ ዶ?, ar: هل حصلت على المساعدة؟, es: ¿Recibió la ayuda que necesitaba?}
    audio: {so: audio/help-so.wav, ti: audio/help-ti.mp3}
    options:
      - {id: all, text: {so: Dhammaan, ti: ኩሉ, ar: كلها, es: Toda}, audio: {so: audio/all-so.wav}}
      - {id: some, text: {so: Qaar, ti: ገለ, ar: بعضها, es: Una parte}}
"""


def write_audio(path: Path, samples: np.ndarray, codec: str, fmt: str) -> None:
    """A test recording in a real container and codec, written with PyAV."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format=fmt) as out:
        stream = out.add_stream(codec, rate=RATE if codec != "pcm_s16le" else 16_000, layout="mono")
        if codec == "pcm_s16le":
            resampler = av.AudioResampler(format="s16", layout="mono", rate=16_000)
        else:
            resampler = av.AudioResampler(format=stream.codec_context.format.name, layout="mono", rate=RATE)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frames = resampler.resample(frame) + resampler.resample(None)
        for f in frames:
            for packet in stream.encode(f):
                out.mux(packet)
        for packet in stream.encode(None):
            out.mux(packet)


def recordings(folder: Path) -> None:
    """Somali recordings as WAV, Tigrinya as MP3 and M4A (a person reading; here espeak-ng stands in)."""
    voice = synthesize("This is a recording made by a person who speaks the language.", "en")
    for name in ("intro-so", "ease-so", "help-so", "all-so"):
        write_audio(folder / "audio" / f"{name}.wav", voice, "pcm_s16le", "wav")
    for name in ("ease-ti", "help-ti"):
        write_audio(folder / "audio" / f"{name}.mp3", voice, "libmp3lame", "mp3")
    write_audio(folder / "audio" / "intro-ti.m4a", voice, "aac", "mp4")


@pytest.fixture
def campaign_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "campaign"
    folder.mkdir()
    (folder / "campaign.yaml").write_text(CAMPAIGN, encoding="utf-8")
    recordings(folder)
    return folder


def ogg_opus_seconds(data: bytes) -> float:
    """Decode a voice note: it must be OGG with Opus inside; its length in seconds."""
    with av.open(io.BytesIO(data)) as container:
        assert container.format.name == "ogg"
        stream = container.streams.audio[0]
        assert stream.codec_context.name == "opus"
        assert stream.codec_context.channels == 1
        samples = sum(frame.samples for frame in container.decode(audio=0))
    return samples / 48_000


def _button(message: dict[str, Any], suffix: str) -> str:
    return next(b["callback_data"] for row in message["reply_markup"]["inline_keyboard"] for b in row
                if b["callback_data"].endswith("\x1d" + suffix))


def _voices(reply) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    return [m for m in reply.messages if m.get("method") == "sendVoice" and not m["deleted"]]


async def _until_voices(client, uid: int, sent, voices: int):  # type: ignore[no-untyped-def]
    """The bot's answer to `sent`, waiting on (however busy the machine) until `voices` voice notes came."""
    reply = await client.wait_for_bot(uid, after=sent, timeout=15)
    messages = {m["message_id"]: m for m in reply.messages}
    while len(_voices(reply)) < voices:
        more = await client.wait_for_bot(uid, after=reply.seq, timeout=15)
        messages.update({m["message_id"]: m for m in more.messages})
        reply = type(more)(seq=more.seq, events=more.events, messages=sorted(messages.values(),
                                                                              key=lambda m: m["message_id"]))
    return reply


def _screen(reply) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    return [m for m in reply.messages if m.get("reply_markup") and not m["deleted"]][-1]


async def test_check_reports_coverage_and_accepts_the_recordings(campaign_dir: Path) -> None:
    from bot.campaigns.audio import coverage

    result = check_file(campaign_dir / "campaign.yaml")
    assert result.ok, [p.render(result.name) for p in result.problems]
    assert coverage(result.spec) == [
        "so: 2 of 2 questions recorded", "ti: 2 of 2 questions recorded",
        "ar: spoken by the offline voice", "es: spoken by the offline voice"]


async def test_every_screen_is_spoken_once_to_those_who_listen(db_url: str, campaign_dir: Path,
                                                              tmp_path: Path) -> None:
    spec = check_file(campaign_dir / "campaign.yaml").spec
    assert spec is not None
    await load_and_open(db_url, spec, voice_notes_from=campaign_dir)
    async with live_bot(db_url, spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        files = live.sandbox.state.files

        async def start(uid: int, lang: str):  # type: ignore[no-untyped-def]
            await client.create_user(uid, language_code=lang)
            sent = await client.send_command(uid, "start", spec.id)
            return await client.wait_for_bot(uid, after=sent, timeout=15)

        async def tap(uid: int, message: dict[str, Any], suffix: str, voices: int = 0):  # type: ignore[no-untyped-def]
            sent = await client.tap(uid, message["message_id"], data=_button(message, suffix))
            return await _until_voices(client, uid, sent, voices)

        # an Arabic speaker chooses to listen on the consent screen: the consent is spoken
        first = 640_000_001
        reply = await start(first, "ar")
        assert _voices(reply) == []  # nobody has chosen to listen yet
        consent = reply.last
        assert "🔊" in str(consent["reply_markup"])
        reply = await tap(first, consent, "v", voices=1)
        voices = _voices(reply)
        assert len(voices) == 1
        consent_file = voices[0]["media"]["voice"]
        seconds = ogg_opus_seconds(files.get(consent_file).data)
        assert 0.5 < seconds <= 60
        # each new screen comes with its voice note, under the screen's buttons
        reply = await tap(first, consent, "y", voices=1)
        voices = _voices(reply)
        assert len(voices) == 1 and _screen(reply)["message_id"] < voices[0]["message_id"]
        question_file = voices[0]["media"]["voice"]
        assert question_file != consent_file
        assert 0.5 < ogg_opus_seconds(files.get(question_file).data) <= 60
        reply = await tap(first, _screen(reply), "r:0.4", voices=1)
        assert len(_voices(reply)) == 1  # the second question
        # Back shows the rating again, without sending its audio again
        reply = await tap(first, _screen(reply), "k")
        assert _voices(reply) == []
        # ... unless 🔊 is tapped
        reply = await tap(first, _screen(reply), "v", voices=1)
        voices = _voices(reply)
        assert [v["media"]["voice"] for v in voices] == [question_file]
        # coming back later (/start) shows the question again, without its voice note
        sent = await client.send_command(first, "start")
        reply = await client.wait_for_bot(first, after=sent, timeout=15)
        assert _voices(reply) == [] and "1.all" in str(_screen(reply)["reply_markup"])  # where they left off
        # the bot's own words are heard too: /help
        sent = await client.send_command(first, "help")
        reply = await _until_voices(client, first, sent, 1)
        assert 0.5 < ogg_opus_seconds(files.get(_voices(reply)[0]["media"]["voice"]).data) <= 60

        # a second listener gets the very same files: uploaded once, then sent by file_id
        uploaded = len(files._by_id)
        second = 640_000_002
        reply = await start(second, "ar")
        reply = await tap(second, reply.last, "v", voices=1)
        assert [v["media"]["voice"] for v in _voices(reply)] == [consent_file]
        reply = await tap(second, _screen(reply), "y", voices=1)
        assert [v["media"]["voice"] for v in _voices(reply)] == [question_file]
        assert len(files._by_id) == uploaded

        # someone who did not choose to listen gets no voice note; /listen switches it on
        third = 640_000_003
        reply = await start(third, "es")
        reply = await tap(third, reply.last, "y")
        assert _voices(reply) == []
        sent = await client.send_command(third, "listen")
        reply = await _until_voices(client, third, sent, 1)
        voices = _voices(reply)
        assert len(voices) == 1 and 0.5 < ogg_opus_seconds(files.get(voices[0]["media"]["voice"]).data) <= 60
        screen = _screen(reply)  # the question, shown again with its voice note under it
        assert screen["message_id"] < voices[0]["message_id"]
        sent = await client.send_command(third, "listen")
        reply = await client.wait_for_bot(third, after=sent, timeout=15)
        reply = await tap(third, screen, "r:0.2")
        assert _voices(reply) == []

        # a Somali speaker hears the recordings from the campaign file
        fourth = 640_000_004
        reply = await start(fourth, "so")
        reply = await tap(fourth, reply.last, "v", voices=1)
        reply = await tap(fourth, _screen(reply), "y", voices=1)
        voices = _voices(reply)
        assert len(voices) == 1
        assert 0.5 < ogg_opus_seconds(files.get(voices[0]["media"]["voice"]).data) <= 60

        # and someone who never listens: no voice note on any screen, and not counted as listening
        fifth = 640_000_005
        reply = await start(fifth, "ar")
        reply = await tap(fifth, reply.last, "y")
        reply = await tap(fifth, _screen(reply), "r:0.5")
        assert _voices(reply) == []

        # in all, per person: no voice note came that was not asked for, however late
        sent_voices = {uid: len(await client.calls(method="sendVoice", chat_id=uid))
                       for uid in (first, second, third, fourth, fifth)}
        assert sent_voices == {first: 5, second: 2, third: 1, fourth: 2, fifth: 0}

        db = Database(db_url)
        async with db.session() as s:
            rows = (await s.scalars(select(Response).order_by(Response.id))).all()
        await db.dispose()
        assert [r.listened for r in rows] == [True, True, True, True, False]


def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_check_refuses_missing_broken_and_too_long_recordings_with_their_line(campaign_dir: Path) -> None:
    folder = campaign_dir
    (folder / "audio" / "broken.mp3").write_bytes(b"ID3\x03" + bytes(range(256)) * 20)
    tone = (np.sin(np.arange(RATE * 61) * 2 * np.pi * 220 / RATE) * 8000).astype(np.int16)
    write_audio(folder / "audio" / "long.wav", tone, "pcm_s16le", "wav")
    (folder / "audio" / "notes.txt").write_text("not a sound", encoding="utf-8")
    text = (CAMPAIGN
            .replace("audio: {so: audio/ease-so.wav, ti: audio/ease-ti.mp3}",
                     "audio: {so: audio/missing-so.ogg, ti: audio/broken.mp3}")
            .replace("audio: {so: audio/help-so.wav, ti: audio/help-ti.mp3}",
                     "audio: {so: audio/long.wav, ti: audio/notes.txt}"))
    (folder / "bad.yaml").write_text(text, encoding="utf-8")
    result = check_file(folder / "bad.yaml")
    assert not result.ok
    got = [((p.line, p.where), p.message) for p in result.problems]
    ease, help_ = _line_of(text, "missing-so.ogg"), _line_of(text, "long.wav")
    missing = next(m for (line, where), m in got if line == ease and "missing-so.ogg" in m)
    assert "not found" in missing and "relative to the campaign file" in missing
    broken = next(m for (line, where), m in got if line == ease and "broken.mp3" in m)
    assert "cannot be" in broken
    long = next(m for (line, where), m in got if line == help_ and "long.wav" in m)
    assert "61 seconds" in long and "at most 60" in long
    wrong = next(m for (line, where), m in got if line == help_ and "notes.txt" in m)
    assert "OGG" in wrong and "MP3" in wrong
    assert all(where == "question 'ease'" for (line, where), _ in got if line == ease)


def test_without_espeak_check_says_what_is_missing(campaign_dir: Path) -> None:
    from tests.test_campaign_check import run_cli

    done = run_cli("campaign", "check", str(campaign_dir / "campaign.yaml"), env={"PATH": "/nonexistent"})
    assert done.returncode == 0, done.stderr
    out = " ".join(done.stdout.split())
    assert ("voice notes: so: 2 of 2 questions recorded; ti: 2 of 2 questions recorded; "
            "ar: no audio (espeak-ng is not installed); es: no audio (espeak-ng is not installed)") in out
    assert "the offline voice (espeak-ng) is not installed" in out and "apt-get install espeak-ng" in out


async def test_without_espeak_the_bot_runs_on_recordings(db_url: str, campaign_dir: Path, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COASSESS_OFFLINE_VOICE", "off")  # as if espeak-ng were not installed
    spec = check_file(campaign_dir / "campaign.yaml").spec
    assert spec is not None
    await load_and_open(db_url, spec, voice_notes_from=campaign_dir)
    async with live_bot(db_url, spec, tmp_path, limits=FAST) as live:
        client = live.sandbox.client
        for uid, lang, heard in ((641_000_001, "so", 1), (641_000_002, "ar", 0)):
            await client.create_user(uid, language_code=lang)
            sent = await client.send_command(uid, "start", spec.id)
            reply = await client.wait_for_bot(uid, after=sent, timeout=15)
            sent = await client.tap(uid, reply.last["message_id"], data=_button(reply.last, "v"))
            reply = await _until_voices(client, uid, sent, heard)
            sent = await client.tap(uid, _screen(reply)["message_id"], data=_button(_screen(reply), "y"))
            reply = await _until_voices(client, uid, sent, heard)
            assert len(_voices(reply)) == heard
            assert "0.1" in str(_screen(reply)["reply_markup"])  # the rating's buttons are there either way
        assert len(await client.calls(method="sendVoice", chat_id=641_000_002)) == 0


@pytest.mark.parametrize(("listeners", "shown"), [(36, True), (4, False)])
async def test_report_shows_how_many_listened_protected(db, example_spec, tmp_path: Path,  # type: ignore[no-untyped-def]
                                                        listeners: int, shown: bool) -> None:
    from sqlalchemy import update

    from analysis import report_model_async, synthesize_async
    from bot.campaigns.store import load_campaign

    async with db.session() as s:
        await load_campaign(s, example_spec)
        await s.commit()
    await synthesize_async(db, example_spec.id, 120, seed=5)
    async with db.session() as s:
        ids = (await s.scalars(select(Response.id).order_by(Response.id))).all()
        await s.execute(update(Response).where(Response.id.in_(ids[:listeners])).values(listened=True))
        await s.commit()
    model = await report_model_async(db, example_spec.id)
    rows = {x["group"]: x for x in model["reach"]["listening"]}
    assert set(rows) == {"listened", "did not listen"}
    if shown:
        # published through the disclosure engine: the count, give or take its cell-key noise
        from analysis.disclosure import MAX_NOISE

        assert abs(rows["listened"]["started"] - listeners) <= MAX_NOISE
        assert abs(rows["did not listen"]["started"] - (len(ids) - listeners)) <= MAX_NOISE
    else:
        # fewer than the campaign's 10: hidden, and so is its complement (everyone minus it)
        assert not isinstance(rows["listened"]["started"], int)
        assert not isinstance(rows["did not listen"]["started"], int)


def test_voice_note_benchmark_reports_each_language() -> None:
    from benchmarks.voice_notes import markdown, synthesis
    from benchmarks.measure import machine, summary

    rows = synthesis(1, ["so"])  # no offline voice for Somali: reported, nothing made
    n = rows[0]["screens"]  # consent, 3 group questions, 8 questions, thanks, help and the hints
    assert rows == [{"language": "so", "voice": None, "screens": n, "spoken": 0}] and n > 14
    spoken = {"sends": 2, "first_upload_ms": 3.0, "added_ms": summary([1.0, 2.0]),
              "send_message_ms": summary([0.5, 0.7])}
    text = markdown({"when": "now", "machine": machine(), "load": 0.1, "runs": 1, "synthesis": rows,
                     "per_screen": spoken})
    assert f"| so | none (recordings only) | 0 of {n} |" in text and "sendVoice by file_id" in text
