"""Spoken screens for people who listen: recordings from the campaign file, or the offline voice.

Every screen a participant sees (consent, each group question, each question with its numbered
options, the thanks, the hints) can be a voice note. A recording named in the campaign file
(`audio: {so: q1-so.m4a}`) or dropped into `locales/<lang>/audio/<key>.<ext>` is used first;
otherwise espeak-ng (a Debian package, fully offline) reads the text, when it has a voice for the
language. Audio is decoded and encoded with PyAV (FFmpeg's libraries): every voice note is
OGG/Opus, mono, the only format Telegram shows as a voice note. Notes are made when a campaign is
loaded, keyed by what they say, never while a person is answering.
"""

from __future__ import annotations

import hashlib
import html
import io
import os
import shutil
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import av
import numpy as np

from bot.campaigns.schema import CampaignSpec, Question

ACCEPTED = (".ogg", ".oga", ".opus", ".mp3", ".wav", ".m4a")
MAX_SECONDS = 60.0
RATE = 48_000  # Opus' own rate; Telegram plays it as is
PAUSE = 0.45  # seconds of silence between the parts of a screen (question, then each option)
ESPEAK_SPEED = 145  # words a minute: a little slower than espeak-ng's 175, for second-language listeners
LOCALES = Path(__file__).resolve().parents[2] / "locales"
# The interface's own recordings: locales/<lang>/audio/<key>.ogg (or .mp3, .wav, .m4a), where <key> is
# consent, thanks, help, or a hint's key in dialogs.survey.HINTS (use_buttons, choose_one, ...).


class AudioError(Exception):
    """A recording cannot be used; the message says why in an officer's words."""


# --------------------------------------------------------------------------- decoding and encoding

def decode(data: bytes) -> np.ndarray:
    """Any audio PyAV can read, as mono 16-bit samples at 48 kHz."""
    try:
        container = av.open(io.BytesIO(data))
    except (av.FFmpegError, ValueError):
        raise AudioError("cannot be read as sound: it may be damaged, or not a sound file at all") from None
    with container:
        if not container.streams.audio:
            raise AudioError("has no sound in it")
        resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
        chunks: list[np.ndarray] = []
        try:
            for frame in container.decode(audio=0):
                chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
            chunks += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except (av.FFmpegError, ValueError):
            raise AudioError("cannot be played to the end: the file may be damaged") from None
    samples = np.concatenate(chunks) if chunks else np.zeros(0, dtype=np.int16)
    if samples.size == 0:
        raise AudioError("has no sound in it")
    return samples.astype(np.int16, copy=False)


def encode_voice_note(samples: np.ndarray) -> bytes:
    """Mono 48 kHz samples as an OGG/Opus voice note."""
    out = io.BytesIO()
    with av.open(out, "w", format="ogg") as container:
        stream = container.add_stream("libopus", rate=RATE, layout="mono")
        stream.bit_rate = 32_000  # speech: clear at a small size
        step = RATE // 50
        for start in range(0, len(samples), step):
            frame = av.AudioFrame.from_ndarray(samples[start:start + step].reshape(1, -1), format="s16",
                                               layout="mono")
            frame.sample_rate = RATE
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return out.getvalue()


def seconds_of(samples: np.ndarray) -> float:
    return len(samples) / RATE


def read_recording(path: Path) -> np.ndarray:
    """A recording named in a campaign file, decoded; AudioError says what is wrong with it."""
    if path.suffix.lower() not in ACCEPTED:
        raise AudioError(f"'{path.name}' is not a kind of sound file we take: use "
                         + ", ".join(x.lstrip(".").upper() for x in ACCEPTED if x not in {".oga", ".opus"}))
    if not path.is_file():
        raise AudioError(f"file not found: {path}")
    samples = decode(path.read_bytes())
    if seconds_of(samples) > MAX_SECONDS:
        raise AudioError(f"'{path.name}' lasts {seconds_of(samples):.0f} seconds; a voice note must last at "
                         f"most {MAX_SECONDS:.0f}: record it shorter, or split the text")
    return samples


# --------------------------------------------------------------------------- the offline voice

def espeak() -> str | None:
    """The espeak-ng program, or None when it is not installed (recordings only)."""
    if os.environ.get("COASSESS_OFFLINE_VOICE", "").lower() in {"0", "off", "no", "false"}:
        return None
    return shutil.which("espeak-ng")


@lru_cache(maxsize=256)
def _voice(program: str, lang: str) -> str | None:
    for candidate in dict.fromkeys([lang.lower(), lang.split("-")[0].lower()]):
        try:
            done = subprocess.run([program, "-q", "-v", candidate, "."], capture_output=True, timeout=20,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired):
            return None
        if done.returncode == 0 and not done.stderr:
            return candidate
    return None


def offline_voice(lang: str) -> str | None:
    """espeak-ng's voice for `lang` (e.g. 'ar'), or None: not installed, or no voice for it (so, ti, ps)."""
    program = espeak()
    return _voice(program, lang) if program else None


def synthesize(text: str, voice: str) -> np.ndarray:
    """`text` read by espeak-ng's `voice`, as mono 48 kHz samples."""
    program = espeak()
    if program is None:
        raise AudioError("espeak-ng is not installed")
    done = subprocess.run([program, "-v", voice, "-s", str(ESPEAK_SPEED), "--stdout"], input=text.encode(),
                          capture_output=True, timeout=120, check=False)
    if done.returncode != 0 or not done.stdout:
        raise AudioError(f"espeak-ng could not read the text in '{voice}'")
    return decode(done.stdout)


# --------------------------------------------------------------------------- screens

@dataclass(frozen=True)
class Part:
    """One piece of a screen: a text the offline voice can read, or a recording that says it."""

    text: str
    recording: Path | None = None


@dataclass
class Screen:
    """A screen as spoken: its key (`consent`, `q:ease`, `group:age`, `done`, `hint:use_buttons`)."""

    key: str
    parts: list[Part] = field(default_factory=list)


def _plain(text: str) -> str:
    """Screen text as the voice reads it: no HTML, no direction marks."""
    out = html.unescape(text).replace("<b>", "").replace("</b>", "").replace("<i>", "").replace("</i>", "")
    return out.translate({0x2068: None, 0x2069: None, 0x200F: None})


def _recording(base_dir: Path, audio: dict[str, str] | None, lang: str) -> Path | None:
    name = (audio or {}).get(lang)
    return (base_dir / name) if name else None


def interface_recording(lang: str, key: str, folder: Path = LOCALES) -> Path | None:
    """A recording of the interface's words dropped into locales/<lang>/audio/<key>.<ext>."""
    for ext in ACCEPTED:
        path = folder / lang / "audio" / f"{key}{ext}"
        if path.is_file():
            return path
    return None


def _options(spec: CampaignSpec, q: Question, lang: str, base_dir: Path, t) -> list[Part]:  # type: ignore[no-untyped-def]
    if q.type == "yesno":
        return [Part(f"1, {t.gettext('Yes')}."), Part(f"2, {t.gettext('No')}.")]
    if q.type == "rating":
        if q.labels:
            low, high = q.labels.get(lang) or q.labels.get(spec.languages[0]) or ["", ""]
            return [Part(f"1, {low}. {q.rating_scale}, {high}.")]
        return []
    parts = [Part(f"{i}, {spec.text(o.text, lang)}.", _recording(base_dir, o.audio, lang))
             for i, o in enumerate(q.options or [], 1)]
    if q.other:
        parts.append(Part(f"{len(parts) + 1}, {t.gettext('Something else…').rstrip('…')}."))
    return parts


def screens(spec: CampaignSpec, lang: str, base_dir: Path) -> list[Screen]:
    """Every screen of the campaign in `lang`, as the parts a voice note is made of."""
    from dialogs.i18n import tr
    from dialogs.survey import HINTS, consent_text

    t = tr(lang, spec.languages[0])
    out = [Screen("consent", [Part(spec.text(spec.title, lang)),
                              *([Part(spec.text(spec.intro, lang), _recording(base_dir, spec.intro_audio, lang))]
                                if spec.intro else []),
                              Part(_plain(consent_text(t, spec)), interface_recording(lang, "consent"))])]
    for dim in spec.groups:
        out.append(Screen(f"group:{dim.id}", [
            Part(spec.text(dim.text, lang), _recording(base_dir, dim.audio, lang)),
            *[Part(f"{i}, {spec.text(o.text, lang)}.", _recording(base_dir, o.audio, lang))
              for i, o in enumerate(dim.options, 1)],
            Part(f"{len(dim.options) + 1}, {t.gettext('Prefer not to say')}.")]))
    for q in spec.questions:
        out.append(Screen(f"q:{q.id}", [Part(spec.text(q.text, lang), _recording(base_dir, q.audio, lang)),
                                        *_options(spec, q, lang, base_dir, t)]))
    thanks = " ".join([t.gettext("Thank you! Your answers are saved."),
                       t.gettext("Would you like a short message later about what changes because of "
                                 "what people said?")])
    out.append(Screen("done", [Part(thanks, interface_recording(lang, "thanks"))]))
    from dialogs.commands import help_text

    out.append(Screen("help", [Part(_plain(help_text(t)).replace("/", " "), interface_recording(lang, "help"))]))
    for key, msgid in HINTS.items():
        out.append(Screen(f"hint:{key}", [Part(t.gettext(msgid), interface_recording(lang, key))]))
    return out


def note_key(screen: Screen, voice: str | None) -> str | None:
    """What a screen's voice note is cached under: its texts (with the voice) and its recordings' bytes.

    None when nothing of the screen can be spoken (no recording, and no offline voice).
    """
    h = hashlib.sha256(b"coassess-voice-note-1")
    spoken = False
    for part in screen.parts:
        if part.recording is not None and part.recording.is_file():
            h.update(b"R" + hashlib.sha256(part.recording.read_bytes()).digest())
            spoken = True
        elif voice is not None and part.text.strip():
            h.update(f"T{voice}\x00{ESPEAK_SPEED}\x00{part.text}\x00".encode())
            spoken = True
    return h.hexdigest() if spoken else None


def make_note(screen: Screen, voice: str | None) -> tuple[bytes, float, str]:
    """The screen's voice note (OGG/Opus bytes), its length in seconds, and its source."""
    pause = np.zeros(int(RATE * PAUSE), dtype=np.int16)
    pieces: list[np.ndarray] = []
    sources: set[str] = set()
    for part in screen.parts:
        if part.recording is not None and part.recording.is_file():
            pieces += [read_recording(part.recording), pause]
            sources.add("recording")
        elif voice is not None and part.text.strip():
            pieces += [synthesize(part.text, voice), pause]
            sources.add("espeak-ng")
    if not pieces:
        raise AudioError(f"nothing of screen '{screen.key}' can be spoken")
    samples = np.concatenate(pieces[:-1])
    source = "recording" if sources == {"recording"} else "espeak-ng" if sources == {"espeak-ng"} else "mixed"
    return encode_voice_note(samples), seconds_of(samples), source


# --------------------------------------------------------------------------- coverage, for `campaign check`

def coverage(spec: CampaignSpec, languages: Iterable[str] | None = None) -> list[str]:
    """One line per language: how much is recorded, and what the offline voice reads."""
    from bot.campaigns.check import _lang_name

    lines: list[str] = []
    n = len(spec.questions)
    program = espeak()
    for lang in languages or spec.languages:
        recorded = sum(1 for q in spec.questions if (q.audio or {}).get(lang))
        voice = offline_voice(lang)
        said = f"{lang}: {recorded} of {n} questions recorded" if recorded else f"{lang}:"
        if recorded == n:
            lines.append(said)
        elif voice:
            lines.append(f"{said}, the rest spoken by the offline voice" if recorded
                         else f"{lang}: spoken by the offline voice")
        elif recorded:
            why = "espeak-ng is not installed" if program is None else f"the offline voice has no {_lang_name(lang)}"
            lines.append(f"{said}; the other questions have no audio ({why})")
        else:
            why = " (espeak-ng is not installed)" if program is None else ""
            lines.append(f"{lang}: no audio{why}")
    return lines
