"""A simulated citizen: reads the bot's buttons like a person would and answers a campaign.

It knows only what a participant knows (the texts and the buttons it is shown) plus its own
intentions (a `Persona`), and it records what it meant to answer so tests can compare that
with what was stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import random
from dataclasses import dataclass, field
from typing import Any

from bot.campaigns.schema import OTHER, PREFER_NOT, CampaignSpec, Question
from bot.sandbox import SandboxClient
from bot.sandbox.client import SandboxError
from bot.scrub import scrub

QUESTION_WIDGETS = {"r", "R", "o", "b", "c"}
SAMPLE_TEXTS = {
    "en": ["Open on Saturday mornings, please.", "An interpreter at the desk would help a lot.",
           "The phone line is always busy. Call me on 07700 900123."],
    "ar": ["أرجو فتح المركز صباح السبت.", "وجود مترجم عند الاستقبال سيساعد كثيرًا."],
    "so": ["Fadlan fura sabtida subaxdii.", "Turjubaan joogo miiska ayaa wax badan caawin lahaa."],
    "uk": ["Будь ласка, працюйте в суботу вранці.", "Перекладач на рецепції дуже допоміг би."],
    "fa": ["لطفاً صبح شنبه هم باز باشید.", "یک مترجم در پذیرش خیلی کمک می‌کند."],
    "es": ["Abran los sábados por la mañana, por favor.", "Un intérprete en recepción ayudaría mucho."],
}


@dataclass
class Persona:
    user_id: int
    language: str
    groups: dict[str, list[str]]
    skip_rate: float = 0.1
    voice_rate: float = 0.0
    stop_after: int | None = None     # leaves after this many questions
    blocks: bool = False              # blocks the bot when leaving
    declines: bool = False            # says "not now" to consent
    wants_outcome: bool = True
    invite: str | None = None
    seed: int = 0


@dataclass
class CitizenResult:
    persona: Persona
    expected: dict[str, Any] = field(default_factory=dict)   # question id -> value (None = skipped)
    groups: dict[str, list[str]] = field(default_factory=dict)
    finished: bool = False
    steps: int = 0
    error: str | None = None


def _buttons(message: dict[str, Any] | None) -> list[tuple[str, str, str]]:
    """(widget, item, label) for every inline button of a message."""
    out = []
    markup = (message or {}).get("reply_markup") or {}
    for row in markup.get("inline_keyboard", []):
        for b in row:
            data = b.get("callback_data") or ""
            suffix = data.split("\x1d", 1)[1] if "\x1d" in data else data
            widget, _, item = suffix.partition(":")
            out.append((widget, item, b.get("text", "")))
    return out


class Citizen:
    """Drives one participant's chat to the end (or to where the persona leaves)."""

    # The bot has answered once it has been quiet this long. Under load it can pause longer than
    # the sandbox's 80 ms between taking the old keyboard away and showing the next question, and a
    # citizen would then read a screen in between.
    IDLE = 0.15
    SETTLE = 1.0  # how long a screen without buttons is watched for a follow-up

    def __init__(self, client: SandboxClient, spec: CampaignSpec, persona: Persona,
                 think: tuple[float, float] = (0.0, 0.0), timeout: float = 30.0) -> None:
        self.client = client
        self.spec = spec
        self.p = persona
        self.rng = random.Random(persona.seed or persona.user_id)
        self.think = think
        self.timeout = timeout
        self.result = CitizenResult(persona)
        self.plan = self._plan()
        self.consented = False
        self.questions_seen: set[str] = set()
        self.message: dict[str, Any] | None = None
        self.seq: int | None = None

    # -- intentions

    def _plan(self) -> dict[str, Any]:
        plan: dict[str, Any] = {}
        for q in self.spec.questions:
            plan[q.id] = self._intend(q)
        return plan

    def _intend(self, q: Question) -> dict[str, Any] | None:
        rng = self.rng
        if q.type == "info":
            return {"seen": True}
        if q.optional and rng.random() < self.p.skip_rate:
            return None
        opts = q.option_ids
        if q.type == "rating":
            return {"value": rng.randint(1, q.rating_scale)}
        if q.type == "yesno":
            return {"value": rng.choice(["yes", "no"])}
        if q.type == "choice":
            if q.other and rng.random() < 0.15:
                return {"option": OTHER, "text": rng.choice(self._texts())}
            return {"option": rng.choice(opts)}
        if q.type == "multi":
            chosen = rng.sample(opts, rng.randint(1, min(2, len(opts))))
            out: dict[str, Any] = {"options": [o for o in opts if o in chosen]}
            if q.other and rng.random() < 0.1:
                out["options"].append(OTHER)
                out["text"] = rng.choice(self._texts())
            return out
        if q.type == "rank":
            return {"order": rng.sample(opts, min(q.pick or len(opts), len(opts)))}
        if q.type == "budget":
            tokens = q.tokens or 10
            coins = {o: 0 for o in opts}
            for _ in range(tokens):
                coins[rng.choice(opts[: max(1, len(opts) - rng.randint(0, 1))])] += 1
            return {"coins": coins}
        if q.type == "text":
            if q.voice and rng.random() < self.p.voice_rate:
                return {"voice": {"duration": rng.randint(3, 40)}}
            return {"text": rng.choice(self._texts())}
        return None

    def _texts(self) -> list[str]:
        return SAMPLE_TEXTS.get(self.p.language, SAMPLE_TEXTS["en"])

    # -- acting

    async def _pause(self) -> None:
        if self.think[1] > 0:
            await asyncio.sleep(self.rng.uniform(*self.think))

    async def _after(self, sent: Any) -> None:
        reply = await self.client.wait_for_bot(self.p.user_id, after=sent, timeout=self.timeout,
                                               idle=self.IDLE)
        alive = [m for m in reply.messages if not m["deleted"]]
        if alive and not any(_buttons(m) for m in alive):
            # no buttons yet: on a busy machine the bot can pause longer than IDLE between taking
            # the old keyboard away and sending the new screen; a person would see it arrive
            with contextlib.suppress(SandboxError):
                more = await self.client.wait_for_bot(self.p.user_id, after=reply.seq, timeout=self.SETTLE,
                                                      idle=self.IDLE)
                reply = more
                alive = [m for m in more.messages if not m["deleted"]] or alive
        self.seq = reply.seq
        if alive:
            # the screen is the newest message with buttons (else the newest): an older one touched
            # after it (its keyboard taken away once the new screen is out) is not what a person
            # looks at, whatever order the two calls reached Telegram in
            with_buttons = [m for m in alive if _buttons(m)]
            self.message = max(with_buttons or alive, key=lambda m: m["message_id"])
        self.result.steps += 1

    async def _tap(self, widget: str, item: str | None = None) -> None:
        await self._pause()
        assert self.message is not None
        for row in (self.message.get("reply_markup") or {}).get("inline_keyboard", []):
            for b in row:
                data = b.get("callback_data") or ""
                if data.endswith("\x1d" + widget + (f":{item}" if item is not None else "")):
                    sent = await self.client.tap(self.p.user_id, self.message["message_id"], data=data)
                    await self._after(sent)
                    return
        raise LookupError(f"no button {widget}:{item}")

    async def _send(self, text: str) -> None:
        await self._pause()
        sent = await self.client.send_text(self.p.user_id, text)
        await self._after(sent)

    async def run(self) -> CitizenResult:
        try:
            await self._run()
        except Exception as exc:  # noqa: BLE001 - reported to the caller, who decides
            self.result.error = f"{exc.__class__.__name__}: {exc}"
        return self.result

    async def _run(self) -> None:
        await self.client.create_user(self.p.user_id, first_name=f"Citizen{self.p.user_id}",
                                      language_code=self.p.language)
        payload = self.spec.id + (f"_{self.p.invite}" if self.p.invite else "")
        sent = await self.client.send_command(self.p.user_id, "start", payload)
        await self._after(sent)
        for _ in range(400):
            if await self._step():
                return
        raise RuntimeError("the conversation did not end")

    async def _step(self) -> bool:
        """One action; True when the conversation is over for this citizen."""
        buttons = _buttons(self.message)
        widgets = {w for w, _, _ in buttons}
        if "l" in widgets:
            items = [i for w, i, _ in buttons if w == "l"]
            await self._tap("l", self.p.language if self.p.language in items else items[0])
            return False
        if "g" in widgets:
            await self._group(buttons)
            return False
        if widgets & QUESTION_WIDGETS or self._is_text_question():
            return await self._question(buttons)
        if {"y", "n"} <= widgets:
            if not self.consented:
                if self.p.declines:
                    await self._tap("n")
                    return True
                self.consented = True
                await self._tap("y")
                return False
            await self._tap("y" if self.p.wants_outcome else "n")
            self.result.finished = True
            return True
        if self.consented and self.questions_seen:
            # the last screen without buttons: done
            self.result.finished = "Thank" in (self.message or {}).get("text", "") or self.result.finished
            return True
        raise RuntimeError(f"unexpected screen: {(self.message or {}).get('text', '')[:80]!r}")

    async def _group(self, buttons: list[tuple[str, str, str]]) -> None:
        items = [(i, label) for w, i, label in buttons if w == "g"]
        idx = int(items[0][0].split(".", 1)[0])
        dim = self.spec.groups[idx]
        want = self.p.groups.get(dim.id) or [PREFER_NOT]
        checked = {i.split(".", 1)[1] for i, label in items if label.startswith("✅")}
        if not dim.multiple or want == [PREFER_NOT]:
            if checked == set(want) and any(w == "d" for w, _, _ in buttons):
                self.result.groups[dim.id] = list(want)
                await self._tap("d")
                return
            self.result.groups[dim.id] = list(want)
            await self._tap("g", f"{idx}.{want[0]}")
            return
        for gid in want:
            if gid not in checked:
                await self._tap("g", f"{idx}.{gid}")
                return
        for gid in checked - set(want):
            await self._tap("g", f"{idx}.{gid}")
            return
        self.result.groups[dim.id] = [o.id for o in dim.options if o.id in want]
        await self._tap("d")

    def _current_question(self, buttons: list[tuple[str, str, str]]) -> Question | None:
        for w, i, _ in buttons:
            if w in {"r", "R", "o", "b"} and "." in i:
                head = i.split(".", 1)[0]
                if head.isdigit():
                    return self.spec.questions[int(head)]
        text = (self.message or {}).get("text") or ""
        for q in self.spec.questions:
            for t in q.text.values():
                if t and (t in text or html.escape(t, quote=False) in text):
                    return q
        return None

    def _is_text_question(self) -> bool:
        q = self._current_question(_buttons(self.message))
        return q is not None and (q.type == "text" or (q.type in {"choice", "multi"} and self._other_prompt()))

    def _other_prompt(self) -> bool:
        widgets = {w for w, _, _ in _buttons(self.message)}
        return widgets <= {"k"}

    async def _question(self, buttons: list[tuple[str, str, str]]) -> bool:
        q = self._current_question(buttons)
        if q is None:
            if any(w == "c" for w, _, _ in buttons):
                await self._tap("c")
                return False
            raise RuntimeError("cannot tell which question is shown")
        if q.id not in self.questions_seen:
            self.questions_seen.add(q.id)
            if self.p.stop_after is not None and len(self.questions_seen) > self.p.stop_after:
                if self.p.blocks:
                    await self.client.block(self.p.user_id)
                return True
        want = self.plan[q.id]
        widgets = {w for w, _, _ in buttons}
        if want is None and "s" in widgets:
            self.result.expected[q.id] = None
            await self._tap("s")
            return False
        if want is None:
            want = self.plan[q.id] = self._intend_required(q)
        qi = self.spec.questions.index(q)
        if q.type == "info":
            self.result.expected[q.id] = {"seen": True}
            await self._tap("c")
        elif q.type == "rating":
            self.result.expected[q.id] = want
            await self._tap("R" if "R" in widgets else "r", f"{qi}.{want['value']}")
        elif q.type == "yesno":
            self.result.expected[q.id] = want
            await self._tap("o", f"{qi}.{want['value']}")
        elif q.type == "choice":
            if want["option"] == OTHER and self._other_prompt():
                self.result.expected[q.id] = {**want, "text": scrub(want["text"])}
                await self._send(want["text"])
            else:
                if want["option"] != OTHER:
                    self.result.expected[q.id] = want
                await self._tap("o", f"{qi}.{want['option']}")
        elif q.type == "multi":
            if "text" in want and self._other_prompt():
                self.result.expected[q.id] = {**want, "text": scrub(want["text"])}
                await self._send(want["text"])
                return False
            checked = {i.split(".", 1)[1] for w, i, label in buttons if w == "o" and label.startswith("✅")}
            for oid in want["options"]:
                if oid not in checked:
                    await self._tap("o", f"{qi}.{oid}")
                    return False
            for oid in checked - set(want["options"]):
                await self._tap("o", f"{qi}.{oid}")
                return False
            if OTHER not in want["options"]:
                self.result.expected[q.id] = want
            await self._tap("d")
        elif q.type == "rank":
            remaining = {i.split(".", 1)[1] for w, i, _ in buttons if w == "o"}
            chosen = [o for o in want["order"] if o not in remaining]
            nxt = [o for o in want["order"] if o in remaining]
            if "d" in widgets and not nxt:
                self.result.expected[q.id] = want
                await self._tap("d")
                return False
            if len(chosen) + 1 == len(want["order"]):
                self.result.expected[q.id] = want
            await self._tap("o", f"{qi}.{nxt[0]}")
        elif q.type == "budget":
            current = {}
            for w, i, label in buttons:
                if w == "b" and "=" in i:
                    current[i.split("=", 1)[1]] = int(label.rsplit(":", 1)[1].strip().strip("\u2068\u2069"))
            target = want["coins"]
            for oid, n in target.items():
                if current.get(oid, 0) > n:
                    await self._tap("b", f"{qi}.-{oid}")
                    return False
            for oid, n in target.items():
                if current.get(oid, 0) < n:
                    await self._tap("b", f"{qi}.+{oid}")
                    return False
            self.result.expected[q.id] = want
            await self._tap("d")
        elif q.type == "text":
            if "voice" in want:
                self.result.expected[q.id] = want
                await self._pause()
                sent = await self.client.send_voice(self.p.user_id, duration=want["voice"]["duration"])
                await self._after(sent)
            else:
                self.result.expected[q.id] = {"text": scrub(want["text"])}
                await self._send(want["text"])
        return False

    def _intend_required(self, q: Question) -> dict[str, Any]:
        saved = self.p.skip_rate
        self.p.skip_rate = 0.0
        try:
            return self._intend(q) or {"seen": True}
        finally:
            self.p.skip_rate = saved


def make_personas(spec: CampaignSpec, n: int, *, seed: int = 7, start_id: int = 500_000_001,
                  languages: list[str] | None = None) -> list[Persona]:
    """A realistic, skewed crowd: some groups many, some few; some skip, speak, leave or block."""
    rng = random.Random(seed)
    langs = languages or spec.languages
    weights = [max(1, 10 - 2 * i) for i in range(len(langs))]
    dims = {d.id: d for d in spec.groups}
    community_for = {"ar": "arabic", "so": "somali", "uk": "ukrainian", "fa": "afghan", "es": "latin"}
    invites = [i.code for i in spec.invites]
    people = []
    for k in range(n):
        lang = rng.choices(langs, weights)[0]
        groups: dict[str, list[str]] = {}
        for did, dim in dims.items():
            ids = [o.id for o in dim.options]
            if rng.random() < 0.06:
                groups[did] = [PREFER_NOT]
            elif did == "community" and community_for.get(lang) in ids:
                groups[did] = [community_for[lang]]
            else:
                groups[did] = [rng.choice(ids)]
        persona = Persona(user_id=start_id + k, language=lang, groups=groups,
                          skip_rate=rng.choice([0.0, 0.1, 0.3]), voice_rate=0.3 if lang in {"so", "ar"} else 0.1,
                          wants_outcome=rng.random() < 0.6, seed=seed * 100_003 + k,
                          invite=rng.choice(invites) if invites and rng.random() < 0.3 else None)
        if rng.random() < 0.12:
            persona.stop_after = rng.randint(1, max(1, len(spec.questions) - 2))
        people.append(persona)
    if people:
        people[-1].stop_after = 2
        people[-1].blocks = True
    return people
