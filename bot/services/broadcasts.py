"""Who gets an invitation, a reminder or an outcome message, and what each person reads.

The rules are pure functions over `Candidate`s (one per participant, loaded once); the
messages are written in each participant's own language with gettext, so Babel extracts the
fixed lines, and every campaign or administrator text in them is HTML-escaped.
"""

from __future__ import annotations

import contextlib
import hashlib
import html
from collections import Counter
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from aiogram import Bot
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.campaigns.store import is_open
from bot.models import AuditEvent, Campaign, Contact, Delivery, Outcome, Participant, Response, ResponseGroup, utcnow
from bot.db import Database
from bot.services import audit
from bot.services.delivery import (
    FINAL,
    AfterSent,
    Composer,
    Outgoing,
    Sender,
    Summary,
    add_deliveries,
    find_broadcast,
    open_broadcast,
    recover,
    requeue_failed,
    summarise,
)
from bot.services.participants import Keys
from dialogs.commands import start_payload
from dialogs.i18n import best_language, tr

AUDIT_ACTIONS = {"invitation": "broadcast", "reminder": "remind", "outcome": "outcome"}
MAX_OUTCOME_TEXT = 3500  # with the title and the intro line, well under Telegram's 4,096


def _e(text: str) -> str:
    return html.escape(text, quote=False)


# --------------------------------------------------------------------------- candidates

@dataclass(frozen=True)
class Candidate:
    """What the rules need to know about one participant, for one campaign."""

    participant_id: int
    language: str | None = None
    stopped: bool = False
    allow_invitations: bool = True
    reachable: bool = True
    # dimension -> groups, from any campaign the participant answered (groups carry over)
    groups: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # this campaign's response, if any
    responded: bool = False
    consented_at: datetime | None = None
    completed_at: datetime | None = None
    reminded_at: datetime | None = None
    wants_outcome: bool = False
    response_language: str | None = None
    # the participant's random record key: dry-run counts of people are perturbed with the sum
    # of their keys (cell key method), so two dry runs show the same figure for the same people
    key: int = 0


def message_language(c: Candidate, languages: Sequence[str]) -> str:
    """The participant's own language if the campaign has it, else the campaign's first."""
    return best_language([c.language, c.response_language], list(languages)) or languages[0]


async def load_candidates(session: AsyncSession, campaign_id: str) -> list[Candidate]:
    """Every participant, with their response to this campaign (if any) and their groups."""
    people = (await session.execute(select(Participant.id, Participant.language, Participant.stopped,
                                           Participant.allow_invitations, Participant.record_key))).all()
    reachable = set((await session.scalars(select(Contact.participant_id))).all())
    responses = {r.participant_id: r for r in (await session.scalars(
        select(Response).where(Response.campaign_id == campaign_id))).all()}
    groups: dict[int, dict[str, set[str]]] = {}
    rows = await session.execute(select(Response.participant_id, Response.campaign_id,
                                        ResponseGroup.dimension_id, ResponseGroup.groups)
                                 .join(ResponseGroup, ResponseGroup.response_id == Response.id))
    for pid, _cid, dim, values in rows.all():
        chosen = {str(v) for v in values or [] if v != PREFER_NOT}
        if chosen:
            groups.setdefault(pid, {}).setdefault(dim, set()).update(chosen)
    out = []
    for pid, lang, stopped, allow, key in people:
        r = responses.get(pid)
        out.append(Candidate(
            participant_id=pid, language=lang, stopped=bool(stopped), allow_invitations=bool(allow),
            reachable=pid in reachable,
            groups={d: frozenset(g) for d, g in groups.get(pid, {}).items()},
            responded=r is not None, consented_at=r.consented_at if r else None,
            completed_at=r.completed_at if r else None, reminded_at=r.reminded_at if r else None,
            wants_outcome=bool(r.wants_outcome) if r else False,
            response_language=r.language if r else None, key=int(key or 0)))
    return out


# --------------------------------------------------------------------------- invitations

@dataclass(frozen=True)
class InvitationFilters:
    """Who an invitation broadcast is for.

    Values of one dimension are alternatives (community=arabic or community=somali); different
    dimensions must all match.
    """

    language: str | None = None
    groups: tuple[tuple[str, tuple[str, ...]], ...] = ()
    only_unfinished: bool = False

    @classmethod
    def make(cls, language: str | None = None, groups: Mapping[str, Iterable[str]] | None = None,
             only_unfinished: bool = False) -> InvitationFilters:
        norm = tuple(sorted((d, tuple(sorted(set(v)))) for d, v in (groups or {}).items()))
        return cls(language or None, norm, only_unfinished)

    def as_dict(self) -> dict[str, Any]:
        return {"language": self.language, "groups": {d: list(v) for d, v in self.groups},
                "only_unfinished": self.only_unfinished}

    def key(self) -> str:
        """The broadcast key: the same command with the same filters resumes the same broadcast."""
        parts = ["invitation"]
        if self.language:
            parts.append(f"lang={self.language}")
        parts += [f"{d}={'|'.join(v)}" for d, v in self.groups]
        if self.only_unfinished:
            parts.append("unfinished")
        key = ";".join(parts)
        return key if len(key) <= 200 else "invitation;" + hashlib.sha256(key.encode()).hexdigest()


def invitation_wanted(c: Candidate, f: InvitationFilters, languages: Sequence[str]) -> bool:
    """Whether this participant should get the invitation (pure)."""
    if c.stopped or not c.allow_invitations or not c.reachable:
        return False
    if c.completed_at is not None:  # already took part
        return False
    if f.only_unfinished and not c.responded:
        return False
    if f.language and message_language(c, languages) != f.language:
        return False
    return all(c.groups.get(dim, frozenset()) & set(values) for dim, values in f.groups)


def invitation_recipients(candidates: Iterable[Candidate], f: InvitationFilters,
                          languages: Sequence[str]) -> list[Candidate]:
    return [c for c in candidates if invitation_wanted(c, f, languages)]


@dataclass
class Breakdown:
    """A dry run: how many would receive it, per language and per group."""

    total: int
    languages: Counter[str]
    groups: dict[str, Counter[str]]
    # the same, as sums of the people's record keys (the cells' keys)
    total_key: int = 0
    language_keys: Counter[str] = field(default_factory=Counter)
    group_keys: dict[str, Counter[str]] = field(default_factory=dict)


NOT_KNOWN = "(not known)"  # the row `breakdown` gives people whose group is not known


def breakdown(recipients: Sequence[Candidate], languages: Sequence[str],
              dimensions: Sequence[str]) -> Breakdown:
    langs: Counter[str] = Counter()
    lang_keys: Counter[str] = Counter()
    for c in recipients:
        lang = message_language(c, languages)
        langs[lang] += 1
        lang_keys[lang] += c.key
    groups: dict[str, Counter[str]] = {}
    group_keys: dict[str, Counter[str]] = {}
    for dim in dimensions:
        counter: Counter[str] = Counter()
        keys: Counter[str] = Counter()
        for c in recipients:
            chosen = c.groups.get(dim) or (NOT_KNOWN,)
            counter.update(chosen)
            for g in chosen:
                keys[g] += c.key
        groups[dim] = counter
        group_keys[dim] = keys
    return Breakdown(len(recipients), langs, groups, sum(c.key for c in recipients), lang_keys, group_keys)


@dataclass(frozen=True)
class Reach:
    """A dry run's counts as they may be shown: each a number, or "<k" / "c" when hidden."""

    k: int
    total: str
    tables: tuple[tuple[str, tuple[tuple[str, str], ...]], ...]

    @property
    def hidden(self) -> bool:
        """Whether any count, the total included, is hidden."""
        return any(not v.isdigit() for v in [self.total, *(n for _, rows in self.tables for _, n in rows)])

    def table(self, title: str) -> tuple[tuple[str, str], ...]:
        return dict(self.tables)[title]


def protect_reach(b: Breakdown, spec: CampaignSpec,
                  extra: Sequence[tuple[str, Mapping[str, int]]] = (),
                  extra_keys: Mapping[str, Mapping[str, int]] | None = None) -> Reach:
    """Who would receive a message (the total, per language, per group of each dimension and
    per `extra` table, each person in exactly one of its rows), with small counts hidden as in
    /admin and the report (disclosure control, `analysis.disclosure`).

    The total describes the selection as much as any row does (`--group community=somali`
    makes it the size of a group), so it is a count like the others: below the campaign's
    min_group_size it shows as "<10", and it is hidden ("c") only when nothing else will stop a
    hidden row from being worked out. A zero is shown: it identifies nobody. Rows follow the
    campaign's order, not the counts, so the order tells nothing either.

    Shown counts are perturbed with the sums of the people's record keys (`Candidate.key`;
    `extra_keys` per `extra` title and row), so that a dry run with `--group` shows the same
    figure as that group's row of a dry run without it, and the two differ by no hidden count.
    """
    from analysis.disclosure import Problem, protect

    p = Problem()
    total = p.count("total", b.total, tier=1, zero_shown=True, key=b.total_key)
    layout: list[tuple[str, list[tuple[str, int]]]] = []

    def add(title: str, rows: list[tuple[str, int]], multiple: bool, keys: Mapping[str, int]) -> None:
        variables = [p.count((title, name), n, zero_shown=True, key=keys.get(name, 0)) for name, n in rows]
        if multiple:  # each person counts in one or more rows
            for v in variables:
                p.at_most({v: 1, total: -1})
            p.at_least({**dict.fromkeys(variables, 1), total: -1})
            for v in variables:  # everyone minus a row is a set of people too
                p.complement((title, v, "not in"), total, v)
        else:
            p.equal({**dict.fromkeys(variables, 1), total: -1})
        layout.append((title, list(zip((name for name, _ in rows), variables, strict=True))))

    add("by language", [(lang, b.languages.get(lang, 0)) for lang in spec.languages], False, b.language_keys)
    for dim in spec.groups:
        counter = b.groups.get(dim.id, {})
        names = [o.id for o in dim.options if o.id != PREFER_NOT]
        names += sorted(n for n in counter if n not in names and n != NOT_KNOWN)
        add(f"by {dim.id}", [(n, counter.get(n, 0)) for n in [*names, NOT_KNOWN]], dim.multiple,
            b.group_keys.get(dim.id, {}))
    for title, counts in extra:
        keys = (extra_keys or {}).get(title)
        if keys is None and any(counts.values()):
            raise ValueError(f"protect_reach needs the record keys of the table {title!r}")
        add(title, list(counts.items()), False, keys or {})
    guard = protect(p, spec.min_group_size)
    shown = guard.text

    return Reach(spec.min_group_size, shown(total),
                 tuple((title, tuple((name, shown(v)) for name, v in rows)) for title, rows in layout))


def protect_summary_line(summary: Summary, k: int) -> str:
    """`Summary.line()` for a dry run ("<10 sent, 0 failed, ..."): how far an earlier run got,
    each count protected as `protect_reach` protects a total, so that it does not give away the
    size of the selection the dry run hides. (The real send's own result table is exact: it is
    what the sender needs to decide whether to carry on or try again.)"""
    from analysis.disclosure import Problem, protect

    p = Problem()
    shown_states = [*FINAL, *(["pending"] if summary.counts.get("pending") else [])]
    variables = {s: p.count(s, summary.counts.get(s, 0), zero_shown=True, key=summary.keys.get(s))
                 for s in shown_states}
    # the run's size is not shown: readers know only that the states add up to it
    others = summary.total - sum(p.values[v] for v in variables.values())
    size = p.count("size", summary.total, derived=True)
    rest = p.count("rest", others, derived=True)
    p.equal({**dict.fromkeys(variables.values(), 1), rest: 1, size: -1})
    guard = protect(p, k)
    shown = guard.text

    return ", ".join(f"{shown(v)} {'not sent yet' if s == 'pending' else s}" for s, v in variables.items())


def protect_total(n: int, k: int, key: int | None = None) -> str:
    """A number of people on its own (the real send's "Sending to N people"), as `protect_reach`
    shows a total: below `k` "<k", a zero as it is; else perturbed with `key`, the sum of the
    people's record keys (`Summary.keys`)."""
    from analysis.disclosure import Problem, protect

    p = Problem()
    v = p.count("total", n, zero_shown=True, key=key)
    return protect(p, k).text(v)


@dataclass
class InvitationPreview:
    """Who a send of this invitation would message now, as the real run decides it.

    Before the first send: everyone the filters select. Once it has started, its list is fixed
    (see `_plan`): only the people of that list not sent yet; `before` says how far it got.
    """

    recipients: list[Candidate]
    started_at: datetime | None = None
    before: Summary | None = None


async def preview_invitation(session: AsyncSession, campaign: Campaign,
                             filters: InvitationFilters) -> InvitationPreview:
    candidates = await load_candidates(session, campaign.id)
    existing = await find_broadcast(session, campaign.id, filters.key())
    if existing is None:
        return InvitationPreview(invitation_recipients(candidates, filters, campaign.languages))
    pending = set((await session.scalars(select(Delivery.participant_id).where(
        Delivery.broadcast_id == existing.id, Delivery.state == "pending"))).all())
    return InvitationPreview([c for c in candidates if c.participant_id in pending], existing.created_at,
                             await summarise(session, existing.id))


# --------------------------------------------------------------------------- reminders

def reminder_due(c: Candidate, campaign: Campaign, now: datetime) -> bool:
    """Consented, not finished, not reminded, the delay passed, the campaign open (pure)."""
    if campaign.reminder_after_hours is None or not is_open(campaign, now):
        return False
    if c.stopped or not c.reachable or c.consented_at is None or c.completed_at is not None:
        return False
    if c.reminded_at is not None:
        return False
    return now - c.consented_at >= timedelta(hours=campaign.reminder_after_hours)


# --------------------------------------------------------------------------- outcomes

def outcome_wanted(c: Candidate) -> bool:
    """Asked to hear back, and has not stopped messages since (pure)."""
    return c.wants_outcome and not c.stopped and c.reachable


def choose_outcome_text(texts: Mapping[str, str], variants: Sequence[Mapping[str, Any]],
                        groups: Mapping[str, Iterable[str]], lang: str, first: str) -> str:
    """The first variant whose groups all match the participant's, else the general text."""
    chosen = texts
    for v in variants:
        wanted: Mapping[str, Iterable[str]] = v.get("groups") or {}
        if wanted and all(set(groups.get(d, ())) & set(g) for d, g in wanted.items()):
            chosen = v.get("text") or texts
            break
    return chosen.get(lang) or chosen.get(first) or texts.get(lang) or texts.get(first) or ""


# --------------------------------------------------------------------------- messages

def deep_link(bot_username: str, payload: str) -> str:
    return f"https://t.me/{bot_username}?start={payload}"


def _title(campaign: Campaign, lang: str) -> str:
    return campaign.title.get(lang) or campaign.title.get(campaign.languages[0]) or campaign.id


def invitation_message(campaign: Campaign, lang: str, bot_username: str) -> Outgoing:
    t = tr(lang, campaign.languages[0])
    _ = t.gettext
    text = "\n\n".join([
        f"<b>{_e(_title(campaign, lang))}</b>",
        _e(_("We would like to hear about your experience. A few short questions, in your "
             "language; you can stop at any time.")),
        _e(_("To get no more messages from us, send /stop.")),
    ])
    return Outgoing(text, (_("Take part"), deep_link(bot_username, start_payload(campaign.id))))


def reminder_message(campaign: Campaign, lang: str, bot_username: str) -> Outgoing:
    t = tr(lang, campaign.languages[0])
    _ = t.gettext
    text = "\n\n".join([
        f"<b>{_e(_title(campaign, lang))}</b>",
        _e(_("You started this survey but have not finished it yet. Your answers so far are "
             "saved, and you can carry on where you stopped.")),
        _e(_("This is the only reminder we will send.")),
    ])
    return Outgoing(text, (_("Carry on"), deep_link(bot_username, start_payload(campaign.id))))


def outcome_message(campaign: Campaign, lang: str, body: str) -> Outgoing:
    t = tr(lang, campaign.languages[0])
    _ = t.gettext
    body = body.strip()[:MAX_OUTCOME_TEXT]
    text = "\n\n".join([
        f"<b>{_e(_title(campaign, lang))}</b>",
        _e(_("You asked to hear what came of the answers. This is what happened:")),
        _e(body),
    ])
    return Outgoing(text)


# --------------------------------------------------------------------------- composers

async def _response_language(session: AsyncSession, campaign_id: str, pid: int) -> str | None:
    return await session.scalar(select(Response.language).where(
        Response.campaign_id == campaign_id, Response.participant_id == pid))


class InvitationComposer:
    def __init__(self, campaign: Campaign, bot_username: str) -> None:
        self.campaign = campaign
        self.bot_username = bot_username

    async def __call__(self, session: AsyncSession, participant: Participant) -> Outgoing | None:
        if not participant.allow_invitations:
            return None
        c = Candidate(participant.id, participant.language,
                      response_language=await _response_language(session, self.campaign.id, participant.id))
        return invitation_message(self.campaign, message_language(c, self.campaign.languages),
                                  self.bot_username)


class ReminderComposer:
    def __init__(self, campaign: Campaign, bot_username: str) -> None:
        self.campaign = campaign
        self.bot_username = bot_username

    async def __call__(self, session: AsyncSession, participant: Participant) -> Outgoing | None:
        r = await session.scalar(select(Response).where(Response.campaign_id == self.campaign.id,
                                                        Response.participant_id == participant.id))
        if r is None or r.completed_at is not None:
            return None  # finished in the meantime: no reminder needed
        c = Candidate(participant.id, participant.language, response_language=r.language)
        return reminder_message(self.campaign, message_language(c, self.campaign.languages),
                                self.bot_username)


def mark_reminded(campaign_id: str) -> AfterSent:
    """An after-sent hook that stamps Response.reminded_at in the same commit as `sent`."""

    async def hook(session: AsyncSession, pid: int) -> None:
        await session.execute(update(Response).where(Response.campaign_id == campaign_id,
                                                     Response.participant_id == pid)
                              .values(reminded_at=utcnow()))

    return hook


class OutcomeComposer:
    def __init__(self, campaign: Campaign, outcome: Outcome) -> None:
        self.campaign = campaign
        self.outcome = outcome

    async def __call__(self, session: AsyncSession, participant: Participant) -> Outgoing | None:
        r = await session.scalar(select(Response).where(Response.campaign_id == self.campaign.id,
                                                        Response.participant_id == participant.id))
        if r is None or not r.wants_outcome:
            return None
        rows = (await session.execute(select(ResponseGroup.dimension_id, ResponseGroup.groups)
                                      .where(ResponseGroup.response_id == r.id))).all()
        groups = {d: [str(g) for g in values or []] for d, values in rows}
        c = Candidate(participant.id, participant.language, response_language=r.language)
        lang = message_language(c, self.campaign.languages)
        body = choose_outcome_text(self.outcome.texts, self.outcome.variants or [], groups, lang,
                                   self.campaign.languages[0])
        if not body.strip():
            return None
        return outcome_message(self.campaign, lang, body)


# --------------------------------------------------------------------------- plans

@dataclass
class Plan:
    """A broadcast resolved and ready to send (or to resume): what the sender needs."""

    broadcast_id: int
    kind: str
    created: bool
    added: int
    recovered: int
    summary: Summary
    compose: Composer
    after_sent: AfterSent | None = None
    retried: int = 0  # failed deliveries put back to be tried again

    @property
    def to_send(self) -> int:
        return self.summary.pending


async def _plan(session: AsyncSession, campaign: Campaign, *, kind: str, key: str,
                filters: dict[str, Any], actor: str, recipients: Callable[[], Awaitable[list[int]]],
                compose: Composer, after_sent: AfterSent | None = None, outcome_id: int | None = None,
                add_new: bool = False) -> Plan:
    b, created = await open_broadcast(session, campaign_id=campaign.id, kind=kind, key=key,
                                      filters=filters, actor=actor, outcome_id=outcome_id)
    recovered = 0 if created else await recover(session, b.id)
    added = 0
    # Recipients are resolved once; only reminders keep adding people as they become due.
    if created or add_new:
        added = await add_deliveries(session, b.id, await recipients())
        if added and b.status == "done":
            b.status, b.finished_at = "running", None
    if created and not added and not add_new:
        # Nobody to send to: store nothing, so that the same command later finds the people
        # who have become recipients since.
        await session.rollback()
        return Plan(0, kind, False, 0, 0, Summary(), compose, after_sent)
    if created or added:
        await audit.record(session, actor, AUDIT_ACTIONS[kind], campaign.id, key=key, filters=filters,
                           recipients=added, resumed=not created)
    summary = await summarise(session, b.id)
    await session.commit()
    return Plan(b.id, kind, created, added, recovered, summary, compose, after_sent)


async def plan_invitation(session: AsyncSession, campaign: Campaign, filters: InvitationFilters,
                          actor: str, bot_username: str) -> Plan:
    async def recipients() -> list[int]:
        candidates = await load_candidates(session, campaign.id)
        return [c.participant_id for c in invitation_recipients(candidates, filters, campaign.languages)]

    return await _plan(session, campaign, kind="invitation", key=filters.key(),
                       filters=filters.as_dict(), actor=actor, recipients=recipients,
                       compose=InvitationComposer(campaign, bot_username))


async def plan_invitation_retry(session: AsyncSession, campaign: Campaign, filters: InvitationFilters,
                                actor: str, bot_username: str) -> Plan | None:
    """The invitation broadcast with these filters, its passing failures to be sent again.

    Only deliveries that `failed` because Telegram was busy or had a fault, and only to people
    who would still be invited now (not stopped, not finished); never `uncertain`, `sent` or
    `stopped` ones. None when there is no such broadcast.
    """
    b = await find_broadcast(session, campaign.id, filters.key())
    if b is None:
        return None
    recovered = await recover(session, b.id)
    candidates = await load_candidates(session, campaign.id)
    still = {c.participant_id for c in invitation_recipients(candidates, filters, campaign.languages)}
    retried = await requeue_failed(session, b.id, still)
    if retried:
        if b.status == "done":
            b.status, b.finished_at = "running", None
        await audit.record(session, actor, "broadcast_retry", campaign.id, key=b.key,
                           filters=filters.as_dict(), recipients=retried)
    summary = await summarise(session, b.id)
    await session.commit()
    return Plan(b.id, "invitation", False, 0, recovered, summary,
                InvitationComposer(campaign, bot_username), retried=retried)


async def plan_reminders(session: AsyncSession, campaign: Campaign, actor: str, bot_username: str,
                         now: datetime | None = None) -> Plan:
    now = now or utcnow()

    async def recipients() -> list[int]:
        candidates = await load_candidates(session, campaign.id)
        return [c.participant_id for c in candidates if reminder_due(c, campaign, now)]

    return await _plan(session, campaign, kind="reminder", key="reminder", filters={}, actor=actor,
                       recipients=recipients, compose=ReminderComposer(campaign, bot_username),
                       after_sent=mark_reminded(campaign.id), add_new=True)


async def plan_outcome(session: AsyncSession, campaign: Campaign, outcome: Outcome, actor: str) -> Plan:
    async def recipients() -> list[int]:
        candidates = await load_candidates(session, campaign.id)
        return [c.participant_id for c in candidates if outcome_wanted(c)]

    return await _plan(session, campaign, kind="outcome", key=f"outcome:{outcome.key}",
                       filters={"outcome": outcome.key}, actor=actor, recipients=recipients,
                       compose=OutcomeComposer(campaign, outcome), outcome_id=outcome.id)


async def send_plan(db: Database, keys: Keys, bot: Bot, plan: Plan, actor: str, campaign_id: str, *,
                    rate: float = 25.0, per_chat_interval: float = 1.0,
                    on_result: Callable[[str], None] | None = None, **sender_options: Any) -> Summary:
    """Send what is pending and record the outcome of the run in the audit log."""
    sender = Sender(db, keys, bot, rate=rate, per_chat_interval=per_chat_interval,
                    on_result=on_result, **sender_options)
    summary: Summary | None = None
    try:
        summary = await sender.run(plan.broadcast_id, plan.compose, plan.after_sent)
        return summary
    finally:
        with contextlib.suppress(Exception):
            async with db.session() as s:
                action = f"{AUDIT_ACTIONS[plan.kind]}_sent"
                earlier = (await s.scalars(select(AuditEvent.details).where(
                    AuditEvent.action == action, AuditEvent.campaign_id == campaign_id))).all()
                run = 1 + sum(1 for d in earlier if (d or {}).get("broadcast") == plan.broadcast_id)
                final = summary or sender.run_summary((await summarise(s, plan.broadcast_id)).pending)
                # this run's figures, numbered among the runs of the same broadcast
                await audit.record(s, actor, action, campaign_id, broadcast=plan.broadcast_id, run=run,
                                   complete=summary is not None, **final.counts)
                await s.commit()
