"""Spoken screens: the one-off cost of making a campaign's voice notes, and what listening adds per screen.

    python -m benchmarks.voice_notes            # the example campaign, every language, 3 runs
    python -m benchmarks.voice_notes --quick    # one run, fewer sends

Synthesis (espeak-ng, then OGG/Opus through PyAV) happens once, at `campaign load`; it is
measured per language of examples/clinic-access.yaml with a fresh cache each run. At answer
time listening adds a lookup of the screen's note and one sendVoice by file_id (the file was
uploaded once); that is measured against the local Bot API sandbox beside a plain sendMessage,
the cost every screen already has.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import load_average, machine, summary

HERE = Path(__file__).resolve().parent
EXAMPLE = HERE.parent / "examples" / "clinic-access.yaml"


def synthesis(runs: int, languages: list[str] | None = None) -> list[dict[str, Any]]:
    """Per language: screens, seconds of audio, and the time to make every note (no cache)."""
    from bot.campaigns.audio import make_note, note_key, offline_voice, screens
    from bot.campaigns.check import check_file

    spec = check_file(EXAMPLE).spec
    assert spec is not None
    out = []
    for lang in languages or spec.languages:
        voice = offline_voice(lang)
        all_screens = screens(spec, lang, EXAMPLE.parent)
        spoken = [s for s in all_screens if note_key(s, voice) is not None]
        if not spoken:
            out.append({"language": lang, "voice": None, "screens": len(all_screens), "spoken": 0})
            continue
        times, audio = [], 0.0
        for _ in range(runs):
            started = time.perf_counter()
            audio = sum(make_note(s, voice)[1] for s in spoken)
            times.append(time.perf_counter() - started)
        out.append({"language": lang, "voice": voice, "screens": len(all_screens), "spoken": len(spoken),
                     "audio_seconds": round(audio, 1), "seconds": summary(times, 3),
                     "ms_per_screen": round(1000 * summary(times)["median"] / len(spoken), 1)})
    return out


async def per_screen(sends: int) -> dict[str, Any]:
    """The time listening adds to a screen: the note's lookup and a sendVoice by file_id."""
    from bot.campaigns.check import check_file
    from bot.campaigns.store import load_campaign
    from bot.db import Database
    from bot.runtime.app import make_bot
    from bot.sandbox import Limits, Sandbox
    from bot.services import spoken

    spec = check_file(EXAMPLE).spec
    assert spec is not None
    # the cost per screen does not depend on the language: Arabic's notes are the ones made
    spec = spec.model_copy(update={"languages": ["ar", *[x for x in spec.languages if x != "ar"]][:1]})
    with tempfile.TemporaryDirectory() as tmp:
        db = Database(f"sqlite+aiosqlite:///{tmp}/bench.db")
        await db.upgrade()
        async with db.session() as s:
            await load_campaign(s, spec)
            await spoken.prepare(s, spec, EXAMPLE.parent)
            await s.commit()
        sandbox = Sandbox(limits=Limits(global_per_second=None, per_chat_per_second=None))
        await sandbox.start()
        bot = make_bot(sandbox.token, sandbox.api_url)
        chat = 700_000_001
        await sandbox.client.create_user(chat)
        await sandbox.client.send_command(chat, "start")  # a person writes first; the bot may answer
        try:
            async with db.session() as s:
                note = await spoken.find(s, spec.id, "ar", "q:ease")
                assert note is not None
                started = time.perf_counter()
                await spoken.send(bot, s, chat, note)  # the one upload
                upload = time.perf_counter() - started
                await s.commit()
            voice, text = [], []
            async with db.session() as s:  # as in an update: its session is open already
                for _ in range(sends):
                    started = time.perf_counter()
                    await bot.send_message(chat, "A question, as every screen sends it.")
                    text.append(time.perf_counter() - started)
                    started = time.perf_counter()
                    note = await spoken.find(s, spec.id, "ar", "q:ease")
                    assert note is not None and note.file_id
                    await spoken.send(bot, s, chat, note)
                    await s.commit()
                    voice.append(time.perf_counter() - started)
        finally:
            await bot.session.close()
            await sandbox.stop()
            await db.dispose()
    return {"sends": sends, "first_upload_ms": round(upload * 1000, 1),
            "added_ms": summary([v * 1000 for v in voice], 2), "send_message_ms": summary([t * 1000 for t in text], 2)}


def markdown(result: dict[str, Any]) -> str:
    lines = ["# Voice notes", "", f"Measured {result['when']} on {result['machine']['cores']} cores, load average "
             f"{result['load']}, with `python -m benchmarks.voice_notes`. Median over "
             f"{result['runs']} runs (range in brackets).", "",
             "| Language | Offline voice | Screens spoken | Seconds of audio | One-off synthesis, s | ms per screen |",
             "| --- | --- | --- | --- | --- | --- |"]
    for r in result["synthesis"]:
        if not r["spoken"]:
            lines.append(f"| {r['language']} | none (recordings only) | 0 of {r['screens']} | – | – | – |")
            continue
        s = r["seconds"]
        lines.append(f"| {r['language']} | {r['voice']} | {r['spoken']} of {r['screens']} | {r['audio_seconds']} | "
                     f"{s['median']} ({s['min']}–{s['max']}) | {r['ms_per_screen']} |")
    p = result["per_screen"]
    a, m = p["added_ms"], p["send_message_ms"]
    lines += ["", f"Per screen, when listening ({p['sends']} sends to the local sandbox): the note's lookup and "
              f"a sendVoice by file_id take {a['median']} ms ({a['q1']}–{a['q3']}), beside {m['median']} ms "
              f"({m['q1']}–{m['q3']}) for the screen's own sendMessage; the one upload of a note took "
              f"{p['first_upload_ms']} ms. Against Telegram, add one more request's network time per screen.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    from datetime import UTC, datetime

    parser = argparse.ArgumentParser(prog="python -m benchmarks.voice_notes", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--out", type=Path, default=HERE)
    args = parser.parse_args(argv)
    runs, sends = (1, 20) if args.quick else (3, 100)
    result = {"when": datetime.now(UTC).isoformat(timespec="seconds"), "machine": machine(),
              "load": round(load_average(), 2), "runs": runs, "synthesis": synthesis(runs),
              "per_screen": asyncio.run(per_screen(sends))}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "voice_notes.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    (args.out / "voice_notes.md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    return result


if __name__ == "__main__":
    main()
