"""Outcome files ("you said, we did"): reading, checking with file:line errors, storing.

The format (see examples/outcome-clinic-access.yaml and docs/administrators.md):

    key: spring-2026            # a name for this message; sending the same key again resumes it
    text:                       # the message, in every language of the campaign
      en: ...
    variants:                   # optional: another text for people in some groups
      - groups: {community: somali}
        text: {en: ..., so: ...}

The first variant whose groups all match a participant's is theirs; everyone else gets `text`.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.check import Problem
from bot.campaigns.schema import CampaignSpec
from bot.campaigns.source import Path_, Source, SourceError, parse, read_text
from bot.models import Broadcast, Campaign, Delivery, Outcome, Response, ResponseGroup
from bot.services.broadcasts import (
    MAX_OUTCOME_TEXT,
    Candidate,
    choose_outcome_text,
    load_candidates,
    outcome_wanted,
)
from bot.services.delivery import Summary, find_broadcast, summarise

KEY_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
KNOWN_KEYS = {"key", "text", "variants"}


@dataclass(frozen=True)
class OutcomeSpec:
    key: str
    texts: dict[str, str]
    # [{"groups": {dimension: [group, ...]}, "text": {lang: ...}}]
    variants: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class OutcomeCheck:
    name: str
    problems: list[Problem] = field(default_factory=list)
    spec: OutcomeSpec | None = None

    @property
    def ok(self) -> bool:
        return self.spec is not None and not self.problems


class _Checker:
    def __init__(self, src: Source, campaign: CampaignSpec) -> None:
        self.src = src
        self.campaign = campaign
        self.problems: list[Problem] = []

    def add(self, path: Path_, message: str, where: str | None = None) -> None:
        self.problems.append(Problem(message, self.src.line_of(path), where))

    def texts(self, path: Path_, value: Any, where: str | None = None) -> dict[str, str]:
        if value is None:
            self.add(path, "'text' is missing: give the message in every campaign language, e.g. "
                           f"'text: {{{self.campaign.languages[0]}: ...}}'", where)
            return {}
        if not isinstance(value, dict):
            self.add(path, "'text' must be one line per language, such as 'en: ...'", where)
            return {}
        out: dict[str, str] = {}
        for lang, text in value.items():
            if lang not in self.campaign.languages:
                self.add((*path, lang), f"'{lang}' is not one of the campaign languages "
                                        f"({', '.join(self.campaign.languages)})", where)
            elif not isinstance(text, str) or not text.strip():
                self.add((*path, lang), f"the '{lang}' text is empty", where)
            elif len(text) > MAX_OUTCOME_TEXT:
                self.add((*path, lang), f"the '{lang}' text is {len(text)} characters; keep it "
                                        f"under {MAX_OUTCOME_TEXT} so it fits one Telegram message",
                         where)
            else:
                out[lang] = text.strip()
        for lang in self.campaign.languages:
            if lang not in value:
                self.add(path, f"text missing in '{lang}': add a line '{lang}: ...' (everyone reads "
                               "it in their own language)", where)
        return out

    def groups(self, path: Path_, value: Any, where: str) -> dict[str, list[str]]:
        if not isinstance(value, dict) or not value:
            self.add(path, "'groups' must name at least one group, such as "
                           "'groups: {community: somali}'", where)
            return {}
        dims = {d.id: d for d in self.campaign.groups}
        out: dict[str, list[str]] = {}
        for dim, groups in value.items():
            if dim not in dims:
                known = ", ".join(dims) or "none"
                self.add((*path, dim), f"unknown group dimension '{dim}' (the campaign has: {known})",
                         where)
                continue
            values = groups if isinstance(groups, list) else [groups]
            allowed = [o.id for o in dims[dim].options]
            good = []
            for i, g in enumerate(values):
                if str(g) not in allowed:
                    self.add((*path, dim, i) if isinstance(groups, list) else (*path, dim),
                             f"unknown group '{g}' in '{dim}' (use one of: {', '.join(allowed)})", where)
                else:
                    good.append(str(g))
            if good:
                out[dim] = good
        return out

    def run(self) -> OutcomeSpec | None:
        data = self.src.data
        if not isinstance(data, dict):
            self.add((), "an outcome file must be a set of 'key: value' lines starting with 'key:'")
            return None
        for k in data:
            if k not in KNOWN_KEYS:
                self.add((k,), f"unknown key '{k}' (an outcome file has key, text and variants)")
        key = data.get("key")
        if key is None:
            self.add((), "'key' is missing: add a line such as 'key: spring-2026' naming this message")
        elif not isinstance(key, str) or not KEY_PATTERN.match(key):
            self.add(("key",), f"'{key}' is not a valid key: use 1 to 64 letters, digits, _ and -")
        texts = self.texts(("text",), data.get("text"))
        variants: list[dict[str, Any]] = []
        raw_variants = data.get("variants", [])
        if raw_variants is None:
            raw_variants = []
        if not isinstance(raw_variants, list):
            self.add(("variants",), "'variants' must be a list (lines starting with '- ')")
            raw_variants = []
        for i, v in enumerate(raw_variants):
            where = f"variant #{i + 1}"
            if not isinstance(v, dict):
                self.add(("variants", i), "a variant needs 'groups' and 'text'", where)
                continue
            for k in v:
                if k not in {"groups", "text"}:
                    self.add(("variants", i, k), f"unknown key '{k}' (a variant has groups and text)",
                             where)
            groups = self.groups(("variants", i, "groups"), v.get("groups"), where)
            vt = self.texts(("variants", i, "text"), v.get("text"), where)
            variants.append({"groups": groups, "text": vt})
        if self.problems:
            return None
        assert isinstance(key, str)
        return OutcomeSpec(key, texts, variants)


def check_outcome_text(text: str, campaign: CampaignSpec, name: str = "<outcome>") -> OutcomeCheck:
    result = OutcomeCheck(name)
    try:
        src = parse(text, name)
    except SourceError as exc:
        result.problems.append(Problem(exc.message, exc.line))
        return result
    checker = _Checker(src, campaign)
    spec = checker.run()
    result.problems = sorted(set(checker.problems), key=lambda p: (p.line or 0, p.message))
    result.spec = spec if not result.problems else None
    return result


def check_outcome_file(path: str | Path, campaign: CampaignSpec) -> OutcomeCheck:
    """Read and check an outcome file against its campaign; never raises for bad content."""
    path = Path(path)
    try:
        text = read_text(path)
    except SourceError as exc:
        return OutcomeCheck(str(path), [Problem(exc.message, exc.line)])
    return check_outcome_text(text, campaign, str(path))


class OutcomeChangeRefused(Exception):
    """The outcome was already (partly) sent with other texts."""


async def _refusal(session: AsyncSession, row: Outcome, spec: OutcomeSpec) -> str | None:
    """Why this file may not replace the stored outcome `row`, or None if it may."""
    if row.texts == spec.texts and (row.variants or []) == spec.variants:
        return None
    sent = await session.scalar(select(Delivery.participant_id).join(Broadcast).where(
        Broadcast.outcome_id == row.id, Delivery.state.in_(("sent", "sending", "uncertain")))
        .limit(1))
    if sent is None:
        return None
    return (f"the outcome '{spec.key}' has already been sent to some people with different "
            "text. To send a new message, give it a new key (for example "
            f"'{spec.key}-update'); to finish sending the old one, use the old file.")


async def _stored(session: AsyncSession, campaign_id: str, key: str) -> Outcome | None:
    return await session.scalar(select(Outcome).where(Outcome.campaign_id == campaign_id,
                                                      Outcome.key == key))


async def store_outcome(session: AsyncSession, campaign_id: str, spec: OutcomeSpec) -> tuple[Outcome, bool]:
    """The Outcome row for this key, created or updated; refuses to change a message already sent."""
    row = await _stored(session, campaign_id, spec.key)
    if row is None:
        row = Outcome(campaign_id=campaign_id, key=spec.key, texts=spec.texts, variants=spec.variants)
        session.add(row)
        await session.flush()
        return row, True
    refused = await _refusal(session, row, spec)
    if refused:
        raise OutcomeChangeRefused(refused)
    row.texts, row.variants = spec.texts, spec.variants
    return row, False


# --------------------------------------------------------------------------- dry run

GENERAL_TEXT = "the general text"


def variant_label(index: int, variant: dict[str, Any]) -> str:
    groups = "; ".join(f"{d}={','.join(g)}" for d, g in (variant.get("groups") or {}).items())
    return f"variant #{index + 1} ({groups})" if groups else f"variant #{index + 1}"


@dataclass
class OutcomePreview:
    """What sending an outcome file would do, found by reading only: nothing is stored."""

    recipients: list[Candidate]
    texts: Counter[str]            # GENERAL_TEXT or variant_label(...) -> people who would read it
    refused: str | None = None     # why sending this file would be refused
    started_at: datetime | None = None  # when an earlier run of this key began, if any
    started_summary: Summary | None = None
    text_keys: Counter[str] = field(default_factory=Counter)  # the same, as sums of record keys


async def preview_outcome(session: AsyncSession, campaign: Campaign, spec: OutcomeSpec) -> OutcomePreview:
    """Who would receive this outcome, and which of its texts each would read (reads only).

    The recipients and the choice of text follow the same rules as sending (`outcome_wanted`,
    `choose_outcome_text` over the groups given in this campaign's response).
    """
    candidates = await load_candidates(session, campaign.id)
    recipients = [c for c in candidates if outcome_wanted(c)]
    started = await find_broadcast(session, campaign.id, outcome_broadcast_key(spec.key))
    if started is not None:
        # its list was fixed by the first run: sending again reaches only those not sent yet
        pending = set((await session.scalars(select(Delivery.participant_id).where(
            Delivery.broadcast_id == started.id, Delivery.state == "pending"))).all())
        recipients = [c for c in candidates if c.participant_id in pending]
    own: dict[int, dict[str, list[str]]] = {}
    rows = await session.execute(select(Response.participant_id, ResponseGroup.dimension_id,
                                        ResponseGroup.groups)
                                 .join(ResponseGroup, ResponseGroup.response_id == Response.id)
                                 .where(Response.campaign_id == campaign.id))
    for pid, dim, values in rows.all():
        own.setdefault(pid, {})[dim] = [str(v) for v in values or []]
    # the variants with their labels as texts: the rule's choice is then the label itself
    first = campaign.languages[0]
    labelled = [{"groups": v.get("groups") or {}, "text": {first: variant_label(i, v)}}
                for i, v in enumerate(spec.variants)]
    texts: Counter[str] = Counter({GENERAL_TEXT: 0, **{v["text"][first]: 0 for v in labelled}})
    text_keys: Counter[str] = Counter()
    for c in recipients:
        chosen = choose_outcome_text({first: GENERAL_TEXT}, labelled, own.get(c.participant_id, {}), first, first)
        texts[chosen] += 1
        text_keys[chosen] += c.key
    preview = OutcomePreview(recipients, texts, text_keys=text_keys)
    row = await _stored(session, campaign.id, spec.key)
    if row is not None:
        preview.refused = await _refusal(session, row, spec)
    if started is not None:
        preview.started_at = started.created_at
        preview.started_summary = await summarise(session, started.id)
    return preview


def outcome_broadcast_key(key: str) -> str:
    """The key of the broadcast that sends the outcome `key` (as `plan_outcome` names it)."""
    return f"outcome:{key}"
