"""Realistic synthetic responses for demos, tests and benchmarks.

Who answers is skewed the way real campaigns are (one large group, several small ones, one
tiny group of a handful of people), groups answer differently from each other, people skip
optional questions, change answers, stop half-way, answer in several languages and send
voice notes. Every value passes `bot.campaigns.flow.validate_answer` and free text goes
through the same scrubbing as real answers. Rows are inserted in bulk for speed.

Synthetic participants get no contact row, so no message can ever be sent to them.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func, insert, select

from bot.campaigns.flow import is_visible, validate_answer
from bot.campaigns.schema import OTHER, PREFER_NOT, CampaignSpec, Question
from bot.db import Database, run
from bot.models import Answer, Participant, Response, ResponseGroup
from bot.scrub import scrub
from bot.services import audit

from analysis.reading import load_context, opened
from analysis.tally import rank_need

CHUNK = 2000
IDEAS: dict[str, list[str]] = {
    "en": ["Evening appointments after work would help me a lot",
           "An interpreter at reception, please", "Shorter waits on the phone line",
           "Online booking that works on my phone", "A bus stop closer to the centre",
           "Letters in plain language", "Someone who explains the results slowly",
           "Weekend opening for working parents"],
    "ar": ["مواعيد مسائية بعد العمل", "مترجم في مكتب الاستقبال من فضلك", "انتظار أقصر على الهاتف",
           "حجز المواعيد عبر الإنترنت", "رسائل بلغة بسيطة", "طبيبة امرأة عند الطلب"],
    "so": ["Turjumaan soo dhaweynta ku jira", "Ballan fiidkii kadib shaqada",
           "Sugitaan gaaban taleefanka", "Warqado luqad fudud ku qoran", "Dhakhtar haweeney ah"],
    "uk": ["Вечірні години прийому після роботи", "Перекладач на рецепції, будь ласка",
           "Коротше очікування на телефоні", "Онлайн-запис, який працює на телефоні",
           "Листи простою мовою"],
    "fa": ["نوبت‌دهی عصرها بعد از کار", "مترجم در پذیرش لطفا", "انتظار کوتاه‌تر پشت تلفن",
           "نوبت‌دهی آنلاین ساده", "نامه‌ها به زبان ساده"],
    "es": ["Citas por la tarde después del trabajo", "Un intérprete en la recepción, por favor",
           "Esperas más cortas al teléfono", "Cita en línea que funcione en el móvil",
           "Cartas en lenguaje sencillo"],
}
OTHER_TEXTS: dict[str, list[str]] = {
    "en": ["The cost of travel", "Childcare", "Nobody called me back"],
    "ar": ["تكلفة المواصلات", "رعاية الأطفال"], "so": ["Kharashka gaadiidka", "Daryeelka carruurta"],
    "uk": ["Вартість проїзду", "Догляд за дітьми"], "fa": ["هزینه رفت‌وآمد", "نگهداری بچه"],
    "es": ["El coste del transporte", "El cuidado de los niños"],
}
# Group ids that suggest a language; anything else falls back to the campaign's languages in turn.
GROUP_LANGUAGE = {"somali": "so", "arabic": "ar", "ukrainian": "uk", "afghan": "fa", "latin": "es",
                  "persian": "fa", "spanish": "es", "russian": "ru", "turkish": "tr"}


class SynthRefused(RuntimeError):
    """Refusing to mix synthetic answers into a campaign that already has answers."""


@dataclass(frozen=True)
class SynthResult:
    campaign: str
    responses: int
    completed: int
    answers: int
    tiny_groups: dict[str, str]  # dimension -> the group kept to a handful of people


@dataclass
class _Plan:
    """The seeded shape of the synthetic population."""

    shares: dict[str, list[float]]
    tiny: dict[str, str]
    tiny_size: int
    effect: dict[tuple[str, str], float]
    preference: dict[tuple[str, str, str], list[float]]
    language_of: dict[str, str]


def _plan(spec: CampaignSpec, baseline: dict[str, dict[str, float]], rng: random.Random,
          preset: set[tuple[str, str]]) -> _Plan:
    shares: dict[str, list[float]] = {}
    tiny: dict[str, str] = {}
    for d in spec.groups:
        ids = [o.id for o in d.options]
        base = baseline.get(d.id)
        if base:
            # Respondents resemble the population, bent by who is easy to reach.
            raw = [max(base.get(g, 0.02), 0.01) * math.exp(rng.gauss(0, 0.6)) for g in ids]
        else:
            order = list(range(len(ids)))
            rng.shuffle(order)
            raw = [math.exp(-0.8 * order[i]) for i in range(len(ids))]
        total = sum(raw)
        shares[d.id] = [x / total for x in raw]
        # A group an invite link presets cannot stay tiny, so it is never chosen as the tiny one.
        candidates = [i for i in range(len(ids)) if (d.id, ids[i]) not in preset]
        if len(ids) >= 3 and candidates:
            tiny[d.id] = ids[min(candidates, key=lambda i: shares[d.id][i])]
    effect = {(d.id, o.id): rng.gauss(0, 0.7) for d in spec.groups for o in d.options}
    preference = {}
    for d in spec.groups:
        for o in d.options:
            for q in spec.questions:
                if q.options:
                    alpha = [rng.gammavariate(1.2, 1.0) + 0.05 for _ in q.options]
                    total = sum(alpha)
                    preference[(d.id, o.id, q.id)] = [a / total for a in alpha]
    languages = list(spec.languages)
    language_of = {}
    for i, o in enumerate(spec.groups[0].options if spec.groups else []):
        guess = GROUP_LANGUAGE.get(o.id)
        if guess in languages:
            language_of[o.id] = guess
        elif len(languages) > 1 and i % 2 == 0:
            language_of[o.id] = languages[1 + (i // 2) % (len(languages) - 1)]
    return _Plan(shares, tiny, 3 + rng.randrange(5), effect, preference, language_of)


def _pick(rng: random.Random, weights: list[float]) -> int:
    return rng.choices(range(len(weights)), weights=weights)[0]


def _sample_groups(spec: CampaignSpec, plan: _Plan, rng: random.Random, tiny_left: dict[str, int],
                   invite_groups: dict[str, list[str]]) -> dict[str, tuple[list[str], str]]:
    """dimension -> (groups, source); dimensions not asked are absent."""
    out: dict[str, tuple[list[str], str]] = {}
    for d in spec.groups:
        if d.id in invite_groups:
            out[d.id] = (list(invite_groups[d.id]), "invite")
            continue
        if rng.random() < 0.03:
            continue  # stopped before the group question
        if rng.random() < 0.04:
            out[d.id] = ([PREFER_NOT], "asked")
            continue
        ids = [o.id for o in d.options]
        weights = list(plan.shares[d.id])
        tiny = plan.tiny.get(d.id)
        if tiny is not None:
            weights[ids.index(tiny)] = 0.0
            if tiny_left.get(d.id, 0) > 0 and rng.random() < 0.02:
                tiny_left[d.id] -= 1
                out[d.id] = ([tiny], "asked")
                continue
        chosen = [ids[_pick(rng, weights)]]
        if d.multiple and rng.random() < 0.06:
            second = ids[_pick(rng, weights)]
            if second != chosen[0]:
                chosen.append(second)
        out[d.id] = ([g for g in ids if g in chosen], "asked")  # stored in campaign order
    return out


def _answer(q: Question, groups: dict[str, tuple[list[str], str]], plan: _Plan, rng: random.Random,
            language: str, latent: float) -> dict[str, Any] | None:
    if q.type == "info":
        return {"seen": True}
    if q.optional and rng.random() < 0.12:
        return None
    if q.type == "rating":
        scale = q.rating_scale
        centre = (scale + 1) / 2 + 0.4 - latent * scale / 5
        return {"value": min(scale, max(1, round(rng.gauss(centre, scale / 5))))}
    if q.type == "yesno":
        return {"value": "yes" if rng.random() < 1 / (1 + math.exp(-(0.8 - latent))) else "no"}
    if q.type == "text":
        if q.voice and rng.random() < 0.25:
            return {"voice": {"file_id": f"synthetic-{rng.getrandbits(48):012x}",
                              "duration": rng.randint(3, 90)}}
        bank = IDEAS.get(language) or IDEAS["en"]
        return {"text": rng.choice(bank)}
    prefs = [preference for (d, g, qid), preference in plan.preference.items()
             if qid == q.id and g in groups.get(d, ([], ""))[0]]
    ids = q.option_ids
    if prefs:
        weights = [sum(p[i] for p in prefs) / len(prefs) for i in range(len(ids))]
    else:
        weights = [1.0 / len(ids)] * len(ids)
    other_text = rng.choice(OTHER_TEXTS.get(language) or OTHER_TEXTS["en"])
    if q.type == "choice":
        if q.other and rng.random() < 0.05:
            return {"option": OTHER, "text": other_text}
        return {"option": ids[_pick(rng, weights)]}
    if q.type == "multi":
        chosen = [o for o, w in zip(ids, weights, strict=True) if rng.random() < min(0.9, 0.3 + w)]
        if not chosen:
            chosen = [ids[_pick(rng, weights)]]
        value: dict[str, Any] = {"options": chosen}
        if q.other and rng.random() < 0.05:
            value["options"] = [*chosen, OTHER]
            value["text"] = other_text
        return value
    if q.type == "rank":
        remaining = list(range(len(ids)))
        order = []
        for _ in range(rank_need(q)):  # Plackett-Luce: most preferred first, with chance
            i = rng.choices(remaining, weights=[weights[j] for j in remaining])[0]
            remaining.remove(i)
            order.append(ids[i])
        return {"order": order}
    if q.type == "budget":
        tokens = q.tokens or 10
        coins = dict.fromkeys(ids, 0)
        for _ in range(tokens):
            coins[ids[_pick(rng, weights)]] += 1
        return {"coins": coins}
    raise ValueError(f"unknown question type {q.type}")


def _language(spec: CampaignSpec, plan: _Plan, groups: dict[str, tuple[list[str], str]],
              rng: random.Random) -> str:
    first = spec.groups[0].id if spec.groups else None
    mine = [plan.language_of[g] for g in groups.get(first or "", ([], ""))[0] if g in plan.language_of]
    if mine and rng.random() < 0.75:
        return mine[0]
    if rng.random() < 0.05 and len(spec.languages) > 1:
        return rng.choice(spec.languages[1:])
    return spec.languages[0]


async def synthesize_async(database: Database | str, campaign: str, responses: int = 1000, *,
                           seed: int = 0, append: bool = False,
                           progress: Callable[[int], None] | None = None,
                           now: datetime | None = None) -> SynthResult:
    """Insert `responses` synthetic responses into a campaign; see `synthesize`."""
    if responses < 0:
        raise ValueError("the number of responses cannot be negative")
    rng = random.Random(seed)
    async with opened(database) as db:
        async with db.engine.connect() as conn:
            ctx = await load_context(conn, campaign)
        spec = ctx.spec
        async with db.session() as session:
            existing = int(await session.scalar(select(func.count()).select_from(Response)
                                                .where(Response.campaign_id == campaign)) or 0)
            offset = int(await session.scalar(select(func.count()).select_from(Participant)) or 0)
        if existing and not append:
            raise SynthRefused(f"campaign '{campaign}' already has {existing} responses; synthetic "
                               "answers would mix with them. Use a demo database, or pass append=True "
                               "(--append) to add more synthetic responses on purpose.")
        invites = [(iid, code) for iid, (code, _) in sorted(ctx.invites.items())]
        invite_groups: dict[int, dict[str, list[str]]] = {}
        for iid, code in invites:
            inv = next((i for i in spec.invites if i.code == code), None)
            if inv is not None:
                invite_groups[iid] = {d: [g] if isinstance(g, str) else list(g) for d, g in inv.groups.items()}
        preset = {(d, g) for groups in invite_groups.values() for d, gs in groups.items() for g in gs}
        plan = _plan(spec, ctx.baseline, rng, preset)
        tiny_left = dict.fromkeys(plan.tiny, plan.tiny_size)
        now = now or datetime.now(UTC)
        start = spec.opens if spec.opens and spec.opens < now else now - timedelta(days=60)
        span = max((now - start).total_seconds(), 3600.0)
        scrubbed: dict[str, str] = {}
        done = answers_total = completed_total = 0
        while done < responses:
            size = min(CHUNK, responses - done)
            people, resp_rows, group_rows, answer_rows = [], [], [], []
            for i in range(size):
                n = offset + done + i
                invite = None
                if invites and rng.random() < 0.6:
                    invite = invites[_pick(rng, [3.0 if j == 0 else 1.0 for j in range(len(invites))])]
                groups = _sample_groups(spec, plan, rng, tiny_left,
                                        invite_groups.get(invite[0], {}) if invite else {})
                language = _language(spec, plan, groups, rng)
                latent = sum(plan.effect.get((d, g), 0.0) for d, (gs, _) in groups.items() for g in gs
                             ) / max(1, len(groups)) + rng.gauss(0, 0.5)
                started = start + timedelta(seconds=rng.random() * span)
                people.append({"pseudonym": hashlib.sha256(f"synthetic:{seed}:{n}".encode()).hexdigest(),
                               "language": language})
                stop_after = rng.randrange(len(spec.questions)) if rng.random() < 0.12 else None
                given: dict[str, Any] = {}
                stamp = started
                rows: list[dict[str, Any]] = []
                for position, q in enumerate(spec.questions):
                    if stop_after is not None and position >= stop_after:
                        break
                    if not is_visible(spec, q, given):
                        continue
                    value = _answer(q, groups, plan, rng, language, latent)
                    stored = validate_answer(q, value) if value is not None else None
                    if stored is not None and "text" in stored:
                        text = stored["text"]
                        stored = {**stored, "text": scrubbed.setdefault(text, scrub(text))}
                    stamp += timedelta(seconds=rng.uniform(4, 60))
                    changes = 0
                    if rng.random() < 0.05:  # went Back and changed it
                        changes = rng.randint(1, 2)
                        stamp += timedelta(seconds=rng.uniform(5, 40))
                    given[q.id] = stored
                    rows.append({"question_id": q.id, "status": "answered" if stored is not None else "skipped",
                                 "value": stored, "answered_at": stamp, "changes": changes})
                finished = stop_after is None
                completed_total += finished
                resp_rows.append({"campaign_id": campaign, "language": language,
                                  "invite_id": invite[0] if invite else None,
                                  "consent_version": "synthetic", "consented_at": started,
                                  "started_at": started,
                                  "completed_at": stamp + timedelta(seconds=2) if finished else None,
                                  "wants_outcome": rng.random() < 0.4})
                group_rows.append([(d, gs, source, started) for d, (gs, source) in groups.items()])
                answer_rows.append(rows)
            async with db.session() as session:
                pids = (await session.execute(
                    insert(Participant).returning(Participant.id, sort_by_parameter_order=True),
                    people)).scalars().all()
                for row, pid in zip(resp_rows, pids, strict=True):
                    row["participant_id"] = pid
                rids = (await session.execute(
                    insert(Response).returning(Response.id, sort_by_parameter_order=True),
                    resp_rows)).scalars().all()
                flat_groups = [{"response_id": rid, "dimension_id": d, "groups": gs, "source": src,
                                "answered_at": at}
                               for rid, gl in zip(rids, group_rows, strict=True) for d, gs, src, at in gl]
                if flat_groups:
                    await session.execute(insert(ResponseGroup), flat_groups)
                flat_answers = [{**a, "response_id": rid}
                                for rid, al in zip(rids, answer_rows, strict=True) for a in al]
                if flat_answers:
                    await session.execute(insert(Answer), flat_answers)
                await session.commit()
            answers_total += sum(len(a) for a in answer_rows)
            done += size
            if progress is not None:
                progress(size)
        async with db.session() as session:
            await audit.record(session, audit.cli_actor(), "synth", campaign, responses=responses,
                               seed=seed, append=append)
            await session.commit()
    return SynthResult(campaign, responses, completed_total, answers_total, dict(plan.tiny))


def synthesize(database: Database | str, campaign: str, responses: int = 1000, *, seed: int = 0,
               append: bool = False) -> SynthResult:
    """Fill a campaign with realistic synthetic responses (for demos, tests and benchmarks).

    Args:
        database: a database URL or a `bot.db.Database`.
        campaign: the id of a campaign already loaded into the database.
        responses: how many responses to create.
        seed: the same seed on an empty campaign gives the same answers.
        append: allow adding to a campaign that already has responses.

    Returns:
        A `SynthResult` with the numbers created and the tiny group of each dimension.
    """
    return run(synthesize_async(database, campaign, responses, seed=seed, append=append))
