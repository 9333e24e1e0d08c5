"""One streaming pass over the responses that counts everything the grouped layout and the report show.

Memory grows with the number of groups, questions and options, plus a few numbers per
response for weighting and priorities; it does not grow with the number of answers.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from bot.campaigns.schema import OTHER, PREFER_NOT, Question

from analysis.contract import VOICE
from analysis.priority import borda_points, coin_shares
from analysis.reading import ALL, NOT_ASKED, CampaignContext, ResponseRecord
from analysis.words import WordCounter, words

RowKey = tuple[str, str]  # (dimension, group); the (all) row is ("", "(all)")
ALL_KEY: RowKey = ("", ALL)
# Reach is also shown per invite link and per language; these act as extra one-choice dimensions.
INVITE_DIM = "(invite)"
LANGUAGE_DIM = "(language)"
NO_INVITE = "(no invite)"
BASE = ""  # the option key of a question's "answered" row


def options_of(q: Question) -> list[str]:
    """The option keys of a question in the grouped layout, in campaign order."""
    if q.type == "rating":
        return [str(i) for i in range(1, q.rating_scale + 1)]
    if q.type == "yesno":
        return ["yes", "no"]
    if q.type in {"choice", "multi"}:
        return [*q.option_ids, *([OTHER] if q.other else [])]
    if q.type in {"rank", "budget"}:
        return list(q.option_ids)
    if q.type == "text":
        return ["text", *([VOICE] if q.voice else [])]
    return []


def rank_need(q: Question) -> int:
    """How many options each rank answer orders."""
    return min(q.pick or len(q.option_ids), len(q.option_ids))


class Cell:
    """The answers to one question from one row (a group, or everyone)."""

    __slots__ = ("base", "counts", "key", "keys", "sums", "total", "total_sq")

    def __init__(self) -> None:
        self.base = 0
        self.counts: Counter[str] = Counter()
        # record keys summed (cell key method): of everyone who answered, and per option
        self.key = 0
        self.keys: Counter[str] = Counter()
        self.total = 0.0  # sum of ratings
        self.total_sq = 0.0
        self.sums: Counter[str] = Counter()  # coins or Borda points per option


@dataclass
class QuestionTally:
    question: Question
    options: list[str]
    rows: dict[RowKey, Cell] = field(default_factory=dict)
    # While counting: one cell per combination of rows a respondent belongs to (everyone, a
    # group per dimension, ...), so an answer is counted once, not once per row; `merge` then
    # adds each combination into its rows. Counts and sums are whole numbers, so the totals are
    # exactly those of counting row by row.
    combos: dict[tuple[RowKey, ...], Cell] = field(default_factory=dict)

    def cell(self, key: RowKey) -> Cell:
        c = self.rows.get(key)
        if c is None:
            c = self.rows[key] = Cell()
        return c

    def merge(self) -> None:
        """Add the combinations' cells into the rows (rows first met first, as counting row by row)."""
        for keys, part in self.combos.items():
            for key in keys:
                cell = self.cell(key)
                cell.base += part.base
                cell.counts.update(part.counts)
                cell.key += part.key
                cell.keys.update(part.keys)
                cell.total += part.total
                cell.total_sq += part.total_sq
                cell.sums.update(part.sums)
        self.combos.clear()


@dataclass
class TextEntry:
    question: str
    order: str  # a stable, arbitrary order for choosing which quotes to show
    language: str
    text: str
    rows: tuple[RowKey, ...]


@dataclass
class Tally:
    """Everything counted in one pass, before any disclosure control."""

    ctx: CampaignContext
    questions: dict[str, QuestionTally]
    # reach: row -> [started, completed, started's key, completed's key]; rows of the
    # dimensions, (invite), (language) and (all); keys are sums of record keys (cell key method)
    reach: dict[RowKey, list[int]] = field(default_factory=dict)
    # respondents per dimension who named at least one group (neither prefer_not_to_say nor not asked)
    known: Counter[str] = field(default_factory=Counter)
    known_key: Counter[str] = field(default_factory=Counter)
    # dimensions where someone belongs to several groups, so group rows do not add up
    overlapping: set[str] = field(default_factory=set)
    # per respondent (in stream order): their rows per dimension, for weighting
    memberships: list[tuple[tuple[str, ...], ...]] = field(default_factory=list)
    # question -> (respondent indexes, per-respondent vectors over options) for budget and rank
    priority_rows: dict[str, tuple[list[int], list[list[float]]]] = field(default_factory=dict)
    texts: list[TextEntry] = field(default_factory=list)
    words: dict[tuple[str, RowKey], WordCounter] = field(default_factory=dict)
    responses: int = 0

    def priority_matrix(self, qid: str) -> tuple[np.ndarray, np.ndarray]:
        idx, rows = self.priority_rows.get(qid, ([], []))
        width = len(options_of(self.questions[qid].question))
        return np.asarray(idx, dtype=np.int64), np.asarray(rows, dtype=float).reshape(-1, width)

    def answered_dimensions(self) -> list[str]:
        """Dimensions in which at least one respondent named a group.

        A dimension nobody has answered yet has only zeros in its group rows; publishing it
        would say nothing, and protecting its zeros would hide the "(all)" figures as well.
        """
        return [d for d in self.ctx.dimension_ids() if self.known.get(d, 0) > 0]

    def dimension_rows(self, dimension: str) -> list[str]:
        """The rows of a dimension in reading order: its groups, then prefer_not_to_say, not asked."""
        if dimension == INVITE_DIM:
            codes = sorted({code for code, _ in self.ctx.invites.values()})
            return [*codes, NO_INVITE]
        if dimension == LANGUAGE_DIM:
            seen = {g for d, g in self.reach if d == LANGUAGE_DIM}
            ordered = [lang for lang in self.ctx.spec.languages if lang in seen]
            return ordered + sorted(seen - set(ordered))
        return [*self.ctx.group_ids(dimension), PREFER_NOT, NOT_ASKED]


def _stable_order(response_id: int) -> str:
    return hashlib.blake2b(str(response_id).encode(), digest_size=6).hexdigest()


async def tally(ctx: CampaignContext, records: AsyncIterator[ResponseRecord],
                progress: Callable[[int], None] | None = None) -> Tally:
    """Count a campaign's responses; `progress` is called with the number of responses just read."""
    spec = ctx.spec
    questions = {q.id: QuestionTally(q, options_of(q)) for q in spec.questions if q.type != "info"}
    t = Tally(ctx=ctx, questions=questions)
    dims = ctx.dimension_ids()
    budget_or_rank = {q.id for q in spec.questions if q.type in {"budget", "rank"}}
    for q in spec.questions:  # in campaign order
        if q.id in budget_or_rank:
            t.priority_rows[q.id] = ([], [])
    pending = 0
    async for r in records:
        index = t.responses
        t.responses += 1
        members = tuple(tuple(r.memberships(d)) for d in dims)
        t.memberships.append(members)
        keys: list[RowKey] = [ALL_KEY]
        for d, groups in zip(dims, members, strict=True):
            keys.extend((d, g) for g in groups)
            if len(groups) > 1:
                t.overlapping.add(d)
            if groups[0] not in (PREFER_NOT, NOT_ASKED):
                t.known[d] += 1
                t.known_key[d] += r.key
        done = 1 if r.completed_at is not None else 0
        rkey = r.key
        for key in (*keys, (INVITE_DIM, r.invite or NO_INVITE), (LANGUAGE_DIM, r.language)):
            cell = t.reach.get(key)
            if cell is None:
                cell = t.reach[key] = [0, 0, 0, 0]
            cell[0] += 1
            cell[1] += done
            cell[2] += rkey
            if done:
                cell[3] += rkey
        combo = tuple(keys)
        for a in r.answers:
            qt = questions.get(a.question_id)
            if qt is None or a.status != "answered" or not isinstance(a.value, dict):
                continue
            _count_answer(t, qt, keys, combo, a.value, r, index, a.question_id in budget_or_rank)
        pending += 1
        if progress is not None and pending >= 1000:
            progress(pending)
            pending = 0
    if progress is not None and pending:
        progress(pending)
    for qt in questions.values():
        qt.merge()
    return t


def _count_answer(t: Tally, qt: QuestionTally, keys: list[RowKey], combo: tuple[RowKey, ...],
                  value: dict[str, Any], r: ResponseRecord, index: int, keep_vector: bool) -> None:
    q = qt.question
    cell = qt.combos.get(combo)
    if cell is None:
        cell = qt.combos[combo] = Cell()
    cell.base += 1
    rkey = r.key
    cell.key += rkey
    counts = cell.counts
    keys_ = cell.keys
    qtype = q.type
    if qtype == "rating":
        rating = float(value["value"])
        counts[str(value["value"])] += 1
        keys_[str(value["value"])] += rkey
        cell.total += rating
        cell.total_sq += rating * rating
    elif qtype == "yesno":
        counts[value["value"]] += 1
        keys_[value["value"]] += rkey
    elif qtype == "choice":
        counts[value["option"]] += 1
        keys_[value["option"]] += rkey
    elif qtype == "multi":
        for o in value.get("options", []):
            counts[o] += 1
            keys_[o] += rkey
    elif qtype == "rank":
        points = borda_points(value.get("order", []), q.option_ids, rank_need(q))
        sums = cell.sums
        for o, p in points.items():
            if p:
                counts[o] += 1
                keys_[o] += rkey
                sums[o] += float(p)
        if keep_vector:
            idx, rows = t.priority_rows[q.id]
            idx.append(index)
            rows.append([float(points[o]) for o in q.option_ids])
    elif qtype == "budget":
        given = value.get("coins", {})
        coins = {o: int(given.get(o, 0)) for o in q.option_ids}
        sums = cell.sums
        for o, c in coins.items():
            if c:
                counts[o] += 1
                keys_[o] += rkey
                sums[o] += float(c)
        if keep_vector:
            idx, rows = t.priority_rows[q.id]
            idx.append(index)
            shares = coin_shares(coins)
            rows.append([shares[o] for o in q.option_ids])
    elif qtype == "text":
        if "voice" in value:
            counts[VOICE] += 1
            keys_[VOICE] += rkey
        else:
            counts["text"] += 1
            keys_["text"] += rkey
            text = value.get("text") or ""
            t.texts.append(TextEntry(q.id, _stable_order(r.id), r.language, text, combo))
            found = words(text, r.language)
            for key in keys:
                counter = t.words.get((q.id, key))
                if counter is None:
                    counter = t.words[(q.id, key)] = WordCounter()
                counter.add_words(found)
