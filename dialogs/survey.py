"""The participant's pass through a campaign: language, consent, groups, questions, thanks.

One message, edited in place; one tap per answer. Every answer is stored when given, through
the update's database session, so it commits together with the dialog state. Button item ids
carry the question's position (`<q>.<value>`), so a stale or replayed tap can never be taken
as the answer to another question.
"""

from __future__ import annotations

import html
import logging
from operator import itemgetter
from typing import Any

from aiogram.types import CallbackQuery, Message
from aiogram_dialog import Dialog, DialogManager, ShowMode, Window
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row, Select
from aiogram_dialog.widgets.text import Format
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.flow import (
    MAX_TEXT_ANSWER,
    InvalidAnswer,
    first_unanswered,
    has_visible_text,
    next_question,
    previous_question,
    progress,
)
from bot.campaigns.schema import OTHER, PREFER_NOT, CampaignSpec, Question
from bot.campaigns.store import is_open
from bot.models import Invite, Participant, Response
from bot.scrub import scrub
from bot.services import participants as people
from bot.services import responses as svc
from dialogs import edits
from dialogs.context import CachedCampaign, keys_of, load_campaign, participant_of, session_of
from dialogs.i18n import Tr, best_language, language_name, tr
from dialogs.screens import answer_tap
from dialogs.screens import stray_input as _stray
from dialogs.states import Survey

log = logging.getLogger(__name__)

FACES = {1: "😞", 2: "🙁", 3: "😐", 4: "🙂", 5: "😀"}
CHECK = "✅ "


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


HINTS = {
    "use_buttons": N_("Please answer with the buttons below."),
    "text_expected": N_("Please type your answer and send it."),
    "text_or_voice": N_("Please type your answer, or send a voice note."),
    "choose_one": N_("Please choose at least one answer, then tap Done."),
    "spend_all": N_("Please spend all your coins first."),
    "other_text": N_("Please write a few words, then send them."),
    "no_coins_left": N_("You have no coins left. To move a coin, first tap − on another choice."),
    "no_coins_here": N_("There are no coins here to take away."),
    "other_question": N_("That button was for another question. Nothing was changed."),
    "nothing_erased": N_("Nothing was erased."),
}


# --------------------------------------------------------------------------- helpers

async def _campaign(manager: DialogManager) -> CachedCampaign:
    cc = await load_campaign(session_of(manager), manager.dialog_data["c"])
    if cc is None:
        raise LookupError("campaign removed")
    return cc


def _tr(manager: DialogManager, spec: CampaignSpec | None = None) -> Tr:
    lang = manager.dialog_data.get("lang") or manager.middleware_data.get("lang") or "en"
    return tr(lang, spec.languages[0] if spec else None)


def _e(text: str) -> str:
    return html.escape(text, quote=False)


async def _response(manager: DialogManager) -> Response | None:
    rid = manager.dialog_data.get("r")
    return await session_of(manager).get(Response, rid) if rid else None


def _parse_item(item_id: str) -> tuple[int, str] | None:
    head, sep, value = item_id.partition(".")
    if not sep or not head.isdigit():
        return None
    return int(head), value


def _rating_label(v: int, scale: int, chosen: int | None) -> str:
    if v == chosen:
        return f"✅ {v}"
    return f"{FACES[v]} {v}" if scale == 5 else str(v)


def _hint(t: Tr, key: str) -> str:
    """The hint for `key` in the participant's language (the msgids are marked in HINTS)."""
    msgid = HINTS.get(key, HINTS["use_buttons"])
    return t.gettext(msgid)


def _hint_line(t: Tr, d: dict[str, Any], *keys: str) -> list[str]:
    """The hint of this screen, in italics, if one of `keys` is set."""
    return [f"<i>{_e(_hint(t, d['hint']))}</i>"] if d.get("hint") in keys else []


def _too_long(t: Tr, n: int) -> str:
    return t.gettext("Your answer is {n} characters long. Please make it shorter, at most {max}, "
                     "and send it again.").format(n=t.number(n), max=t.number(MAX_TEXT_ANSWER))


def _need_rank(q: Question) -> int:
    return min(q.pick or len(q.option_ids), len(q.option_ids))


# --------------------------------------------------------------------------- routing

async def on_start(start_data: Any, manager: DialogManager) -> None:
    data = start_data or {}
    d = manager.dialog_data
    d["c"] = data["campaign"]
    d["inv"] = data.get("invite")
    cc = await _campaign(manager)
    participant: Participant | None = participant_of(manager)
    lang = best_language([participant.language if participant else None, data.get("tg_lang")],
                         cc.spec.languages)
    if lang:
        d["lang"] = lang
    await route(manager)


async def route(manager: DialogManager) -> None:
    """Go to wherever this participant should be now: language, consent, groups or a question."""
    d = manager.dialog_data
    d.pop("hint", None)
    cc = await _campaign(manager)
    if not d.get("lang"):
        await manager.switch_to(Survey.language)
        return
    participant = participant_of(manager)
    if participant is not None and not participant.language:
        # the language this person reads (chosen, or Telegram's): later invitations, reminders
        # and outcomes use it; /language changes it
        participant.language = d["lang"]
    session = session_of(manager)
    response = None
    if participant is not None:
        response = await svc.find_response(session, cc.spec.id, participant.id)
    if response is None or response.consent_version is None:
        await manager.switch_to(Survey.consent)
        return
    d["r"] = response.id
    if response.language != d["lang"]:
        response.language = d["lang"]
    if response.completed_at is not None and "q" not in d:
        d["finished_before"] = True
        await manager.switch_to(Survey.done)
        return
    given = await svc.groups_of(session, response.id)
    for idx, dim in enumerate(cc.spec.groups):
        if dim.id not in given:
            await _open_dimension(manager, cc, response, idx)
            return
    answers = await svc.answers_of(session, response.id)
    q = first_unanswered(cc.spec, answers)
    if q is None:
        await _finish(manager, response)
        return
    await _open_question(manager, cc.spec, q, answers)


async def _open_dimension(manager: DialogManager, cc: CachedCampaign, response: Response, idx: int) -> None:
    d = manager.dialog_data
    dim = cc.spec.groups[idx]
    session = session_of(manager)
    given = await svc.groups_of(session, response.id)
    preset: list[str] | None = given.get(dim.id)
    source = "asked" if preset else None
    if preset is None and response.invite_id:
        invite = await session.get(Invite, response.invite_id)
        if invite and dim.id in (invite.groups or {}):
            preset, source = list(invite.groups[dim.id]), "invite"
    if preset is None:
        earlier = await svc.earlier_groups(session, response.participant_id, response.id)
        valid = {o.id for o in dim.options} | {PREFER_NOT}
        if dim.id in earlier and set(earlier[dim.id]) <= valid:
            preset, source = earlier[dim.id], "reused"
    d["dim"] = idx
    d["draft"] = list(preset or [])
    d["preset"] = source
    await manager.switch_to(Survey.group, show_mode=ShowMode.EDIT if _is_callback(manager) else None)


def _is_callback(manager: DialogManager) -> bool:
    return isinstance(manager.event, CallbackQuery)


async def _open_question(manager: DialogManager, spec: CampaignSpec, q: Question,
                         answers: dict[str, Any]) -> None:
    d = manager.dialog_data
    d["q"] = spec.questions.index(q)
    d.pop("hint", None)
    # the "something else" text held for this question only (never another question's)
    d.pop("other_text", None)
    d.pop("other_voice", None)
    current = answers.get(q.id)
    if q.type == "multi":
        d["draft"] = list(current.get("options", [])) if current else []
        if current and current.get("text"):
            d["other_text"] = current["text"]
        elif current and current.get("voice"):
            d["other_voice"] = current["voice"]
    elif q.type == "rank":
        d["draft"] = list(current.get("order", [])) if current else []
    elif q.type == "budget":
        d["draft"] = dict(current.get("coins", {})) if current else {o: 0 for o in q.option_ids}
    else:
        d["draft"] = None
    await manager.switch_to(Survey.question)


async def _finish(manager: DialogManager, response: Response) -> None:
    await svc.complete(session_of(manager), response)
    manager.dialog_data.pop("q", None)
    await manager.switch_to(Survey.done)


async def _advance(manager: DialogManager, spec: CampaignSpec, q: Question) -> None:
    """After an answer to `q`: the next visible question, or the end."""
    session = session_of(manager)
    rid = manager.dialog_data["r"]
    if _referenced(spec, q.id):
        await svc.drop_hidden_answers(session, rid, spec)
    answers = await svc.answers_of(session, rid)
    nxt = next_question(spec, q.id, answers)
    # an earlier question may still be open if the participant went Back and forward
    if nxt is None:
        nxt = first_unanswered(spec, answers)
    if nxt is None:
        response = await _response(manager)
        assert response is not None
        await _finish(manager, response)
        return
    await _open_question(manager, spec, nxt, answers)


def _referenced(spec: CampaignSpec, qid: str) -> bool:
    return any(q.show_if and qid in q.show_if for q in spec.questions)


async def _record(manager: DialogManager, q: Question, value: dict[str, Any] | None) -> bool:
    try:
        await svc.record_answer(session_of(manager), manager.dialog_data["r"], q, value)
    except (InvalidAnswer, ValueError) as exc:
        log.info("ignored an answer that does not fit question %s: %s", q.id, exc)
        return False
    return True


# --------------------------------------------------------------------------- language

async def get_language(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    cc = await _campaign(dialog_manager)
    t = _tr(dialog_manager, cc.spec)
    _ = t.gettext
    title = cc.spec.text(cc.spec.title, t.lang)
    parts = [f"<b>{_e(title)}</b>", _e(_("Which language would you like to use?")),
             *_hint_line(t, dialog_manager.dialog_data, "use_buttons", "nothing_erased")]
    return {
        "text": "\n\n".join(parts),
        "languages": [(code, language_name(code)) for code in cc.spec.languages],
    }


async def on_language(callback: CallbackQuery, widget: Any, manager: DialogManager, code: str) -> None:
    cc = await _campaign(manager)
    if code not in cc.spec.languages:
        return
    manager.dialog_data["lang"] = manager.dialog_data["picked"] = code
    participant = participant_of(manager)
    if participant is not None:
        participant.language = code
    await route(manager)


# --------------------------------------------------------------------------- consent

def consent_text(t: Tr, spec: CampaignSpec) -> str:
    _ = t.gettext
    minutes = spec.minutes()
    if spec.service:
        # a service name is often Latin inside Arabic text: isolated, it cannot turn the sentence around
        sees = _("{who} can see your answers, but not your name or phone number.").format(
            who=t.isolate(spec.service))
    else:
        sees = _("The team that runs this survey can see your answers, but not your name or "
                 "phone number.")
    lines = [
        _("We will ask you a few short questions.") + " " + t.ngettext(
            "It takes about {n} minute.", "It takes about {n} minutes.", minutes).format(n=t.number(minutes)),
        _("We keep your answers without your name or phone number."),
        _("Please do not write your name, address or phone number in your answers."),
        sees,
        _("Reports show groups of people, never a small group on its own. "
          "They may quote what you write."),
        _("You can see what we keep with /privacy and erase it all with /forget."),
        _("Do you agree to take part?"),
    ]
    return "\n\n".join(_e(x) for x in lines)


async def get_consent(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    cc = await _campaign(dialog_manager)
    t = _tr(dialog_manager, cc.spec)
    _ = t.gettext
    spec = cc.spec
    parts = [f"<b>{_e(spec.text(spec.title, t.lang))}</b>"]
    if spec.intro:
        parts.append(_e(spec.text(spec.intro, t.lang)))
    if dialog_manager.dialog_data.get("hint") == "closed":
        parts.append(_e(_("Sorry, this survey is closed now. Thank you for your interest.")))
        return {"text": "\n\n".join(parts), "agree": "", "not_now": "", "open": False}
    parts.append(consent_text(t, spec))
    parts += _hint_line(t, dialog_manager.dialog_data, "use_buttons", "nothing_erased")
    return {"text": "\n\n".join(parts), "agree": _("Yes, I agree"), "not_now": _("Not now"), "open": True}


async def on_agree(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    cc = await _campaign(manager)
    session = session_of(manager)
    participant = participant_of(manager)
    if participant is None and not is_open(cc.campaign):
        manager.dialog_data["hint"] = "closed"
        return
    if participant is None:
        # only now, with their agreement, is the person kept (and the way to reach them)
        if callback.message is None:
            return
        participant = await people.ensure(session, keys_of(manager), callback.from_user.id,
                                          callback.message.chat.id, manager.dialog_data.get("picked"))
        manager.middleware_data["participant"] = participant
    existing = await svc.find_response(session, cc.spec.id, participant.id)
    if existing is None and not is_open(cc.campaign):
        manager.dialog_data["hint"] = "closed"
        return
    invite = None
    code = manager.dialog_data.get("inv")
    if code:
        from sqlalchemy import select

        invite = await session.scalar(select(Invite).where(Invite.campaign_id == cc.spec.id,
                                                           Invite.code == code))
    response = existing or await svc.start_response(session, cc.spec.id, participant.id,
                                                    manager.dialog_data["lang"], invite)
    if response.consent_version is None:
        await svc.record_consent(session, response)
    await route(manager)


async def on_not_now(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    manager.dialog_data["declined"] = True
    await manager.switch_to(Survey.done)


# --------------------------------------------------------------------------- groups

async def get_group(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    d = dialog_manager.dialog_data
    cc = await _campaign(dialog_manager)
    spec = cc.spec
    t = _tr(dialog_manager, spec)
    _ = t.gettext
    idx = d["dim"]
    dim = spec.groups[idx]
    draft = d.get("draft") or []
    # gettext calls stay outside f-strings, where pybabel extract cannot see them
    parts = [f"<b>{t.fraction(idx + 1, len(spec.groups))}</b>  " + _e(_("About you")),
             _e(spec.text(dim.text, t.lang))]
    if d.get("preset") == "reused" and draft:
        parts.append(_e(_("You told us this before. Tap Done to keep it, or change it.")))
    elif d.get("preset") == "invite" and draft:
        parts.append(_e(_("We filled this in from your invitation. Tap Done to keep it, or change it.")))
    elif dim.multiple:
        parts.append(_e(_("Choose all that fit, then tap Done.")))
    if d.get("hint"):
        parts.append(f"<i>{_e(_hint(t, d['hint']))}</i>")
    items = [(f"{idx}.{o.id}", (CHECK if o.id in draft else "") + spec.text(o.text, t.lang))
             for o in dim.options]
    items.append((f"{idx}.{PREFER_NOT}", (CHECK if PREFER_NOT in draft else "") + _("Prefer not to say")))
    return {
        "text": "\n\n".join(parts), "group_items": items, "done": _("Done"), "back": _("Back"),
        "show_done": bool(draft) and (dim.multiple or d.get("preset") is not None),
        "can_back": idx > 0,
    }


async def on_group(callback: CallbackQuery, widget: Any, manager: DialogManager, item_id: str) -> None:
    d = manager.dialog_data
    parsed = _parse_item(item_id)
    if parsed is None:
        return
    cc = await _campaign(manager)
    if parsed[0] != d.get("dim"):
        given = await svc.groups_of(session_of(manager), d["r"]) if "r" in d else {}
        dims = cc.spec.groups
        if not (0 <= parsed[0] < len(dims) and parsed[1] in given.get(dims[parsed[0]].id, [])):
            await _other_question_tap(callback, manager, cc.spec)
        return
    dim = cc.spec.groups[parsed[0]]
    gid = parsed[1]
    valid = {o.id for o in dim.options}
    if gid != PREFER_NOT and gid not in valid:
        return
    d.pop("hint", None)
    if dim.multiple and gid != PREFER_NOT:
        draft = [g for g in d.get("draft") or [] if g != PREFER_NOT]
        draft = [g for g in draft if g != gid] if gid in draft else [*draft, gid]
        d["draft"] = draft
        d["preset"] = d.get("preset") if draft else None
        return
    await _save_dimension(manager, cc, [gid])


async def on_group_done(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    cc = await _campaign(manager)
    draft = d.get("draft") or []
    if not draft:
        d["hint"] = "choose_one"
        return
    await _save_dimension(manager, cc, draft)


async def _save_dimension(manager: DialogManager, cc: CachedCampaign, groups: list[str]) -> None:
    d = manager.dialog_data
    dim = cc.spec.groups[d["dim"]]
    ordered = [PREFER_NOT] if PREFER_NOT in groups else [o.id for o in dim.options if o.id in groups]
    source = d.get("preset") if d.get("preset") in {"invite", "reused"} else "asked"
    await svc.set_groups(session_of(manager), d["r"], dim.id, ordered, source)
    nxt = d["dim"] + 1
    if nxt < len(cc.spec.groups):
        response = await _response(manager)
        assert response is not None
        given = await svc.groups_of(session_of(manager), response.id)
        if cc.spec.groups[nxt].id not in given or "q" in d:
            await _open_dimension(manager, cc, response, nxt)
            return
    await route(manager)


async def on_group_back(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    if d.get("dim", 0) <= 0:
        return
    cc = await _campaign(manager)
    response = await _response(manager)
    assert response is not None
    await _open_dimension(manager, cc, response, d["dim"] - 1)


# --------------------------------------------------------------------------- questions

async def get_question(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    d = dialog_manager.dialog_data
    cc = await _campaign(dialog_manager)
    spec = cc.spec
    t = _tr(dialog_manager, spec)
    _ = t.gettext
    qi = d["q"]
    q = spec.questions[qi]
    answers = await svc.answers_of(session_of(dialog_manager), d["r"])
    current = answers.get(q.id)
    pos, total = progress(spec, q.id, answers)
    parts = [f"<b>{t.fraction(pos, total)}</b>", _e(spec.text(q.text, t.lang))]
    out: dict[str, Any] = {
        "is_rating": False, "is_rating_wide": False, "has_options": False, "is_budget": False,
        "is_info": q.type == "info", "show_done": False, "show_undo": False,
        "can_skip": q.optional and q.type != "info",
        "can_back": previous_question(spec, q.id, answers) is not None or bool(spec.groups),
        "rating_items": [], "option_items": [], "budget_items": [],
        "back": _("Back"), "skip": _("Skip"), "done": _("Done"), "undo": _("Undo"),
        "cont": _("Continue"),
    }
    draft = d.get("draft")
    if q.type == "rating":
        scale = q.rating_scale
        chosen = current.get("value") if current else None
        out["is_rating" if scale <= 6 else "is_rating_wide"] = True
        out["rating_items"] = [(f"{qi}.{v}", _rating_label(v, scale, chosen)) for v in range(1, scale + 1)]
        if q.labels:
            low, high = q.labels.get(t.lang) or q.labels.get(spec.languages[0]) or ["", ""]
            parts.append(_e(f"{t.isolate('1')} = {low}  ·  {t.isolate(str(scale))} = {high}"))
    elif q.type in {"choice", "yesno"}:
        out["has_options"] = True
        chosen = (current or {}).get("option") or (current or {}).get("value")
        if q.type == "yesno":
            opts = [("yes", _("Yes")), ("no", _("No"))]
        else:
            opts = [(o.id, spec.text(o.text, t.lang)) for o in q.options or []]
            if q.other:
                opts.append((OTHER, _("Something else…")))
        out["option_items"] = [(f"{qi}.{oid}", (CHECK if oid == chosen else "") + label)
                               for oid, label in opts]
    elif q.type == "multi":
        out["has_options"] = True
        chosen = set(draft or [])
        opts = [(o.id, spec.text(o.text, t.lang)) for o in q.options or []]
        if q.other:
            opts.append((OTHER, _("Something else…")))
        out["option_items"] = [(f"{qi}.{oid}", (CHECK if oid in chosen else "") + label)
                               for oid, label in opts]
        out["show_done"] = bool(chosen)
        if OTHER in chosen and d.get("other_text"):
            # the "something else" text already given: Done will not ask for it again
            parts.append(_e(_("Your answer: {answer}").format(answer=t.isolate(d["other_text"][:300]))))
        elif OTHER in chosen and d.get("other_voice"):
            parts.append(_e(_("You sent a voice note.")))
        parts.append(_e(_("Choose all that fit, then tap Done.")))
    elif q.type == "rank":
        order = list(draft or [])
        need = _need_rank(q)
        names = {o.id: spec.text(o.text, t.lang) for o in q.options or []}
        if order:
            parts.append("\n".join(f"{t.number(i)}. {_e(names[o])}" for i, o in enumerate(order, 1)
                                   if o in names))
        if len(order) < need:
            parts.append(_e(_("Tap your choice number {n}.").format(n=t.number(len(order) + 1))))
            out["has_options"] = True
            out["option_items"] = [(f"{qi}.{o}", names[o]) for o in q.option_ids if o not in order]
        out["show_undo"] = bool(order)
        out["show_done"] = len(order) == need
    elif q.type == "budget":
        coins = dict(draft or {})
        tokens = q.tokens or 10
        left = tokens - sum(coins.values())
        parts.append("🪙 " + _e(t.ngettext("{n} coin left", "{n} coins left", left).format(n=t.number(left))))
        out["is_budget"] = True
        items = []
        for o in q.options or []:
            n = coins.get(o.id, 0)
            items += [(f"{qi}.-{o.id}", "−"), (f"{qi}.={o.id}", f"{spec.text(o.text, t.lang)}: {t.number(n)}"),
                      (f"{qi}.+{o.id}", "+")]
        out["budget_items"] = items
        out["show_done"] = left == 0
    elif q.type == "text":
        if current and "text" in current:
            parts.append(_e(_("Your answer: {answer}").format(answer=t.isolate(current["text"][:300]))))
            out["show_done"] = True
        elif current and "voice" in current:
            parts.append(_e(_("You sent a voice note.")))
            out["show_done"] = True
        parts.append(_e(_("Type your answer and send it.")))
        if q.voice:
            parts.append(_e(_("Or send a voice note.")))
    if d.get("hint"):
        hint = d["hint"]
        msg = _too_long(t, d.get("hint_n", 0)) if hint == "too_long" else _hint(t, hint)
        parts.append(f"<i>{_e(msg)}</i>")
    out["text"] = "\n\n".join(parts)
    return out


async def _current(manager: DialogManager) -> tuple[CampaignSpec, Question]:
    cc = await _campaign(manager)
    return cc.spec, cc.spec.questions[manager.dialog_data["q"]]


async def on_option(callback: CallbackQuery, widget: Any, manager: DialogManager, item_id: str) -> None:
    d = manager.dialog_data
    parsed = _parse_item(item_id)
    if parsed is None or "q" not in d:
        return
    qi, value = parsed
    spec, q = await _current(manager)
    if qi != d["q"]:
        await _stale_tap(callback, manager, spec, qi, value)
        return
    d.pop("hint", None)
    if q.type == "rating":
        if value.isdigit() and await _record(manager, q, {"value": int(value)}):
            await _advance(manager, spec, q)
    elif q.type == "yesno":
        if await _record(manager, q, {"value": value}):
            await _advance(manager, spec, q)
    elif q.type == "choice":
        if value == OTHER and q.other:
            await _ask_other(manager, qi)
        elif await _record(manager, q, {"option": value}):
            await _advance(manager, spec, q)
    elif q.type == "multi":
        allowed = set(q.option_ids) | ({OTHER} if q.other else set())
        if value in allowed:
            draft = list(d.get("draft") or [])
            d["draft"] = [x for x in draft if x != value] if value in draft else [*draft, value]
            if OTHER not in d["draft"]:
                d.pop("other_text", None)  # "something else" unticked: its text goes with it
                d.pop("other_voice", None)
    elif q.type == "rank":
        draft = list(d.get("draft") or [])
        if value in q.option_ids and value not in draft and len(draft) < _need_rank(q):
            draft.append(value)
            d["draft"] = draft
            if len(draft) == _need_rank(q) and await _record(manager, q, {"order": draft}):
                await _advance(manager, spec, q)


async def _stale_tap(callback: CallbackQuery, manager: DialogManager, spec: CampaignSpec, qi: int,
                     value: str) -> None:
    """A tap carrying another question's button (a double tap, an old message, a forged update).

    It stores nothing: only the question on screen is answered. A repeat of the answer already
    stored (the second tap of a double tap) passes quietly; anything else gets a short notice.
    """
    if 0 <= qi < len(spec.questions) and "r" in manager.dialog_data:
        q = spec.questions[qi]
        stored = (await svc.answers_of(session_of(manager), manager.dialog_data["r"])).get(q.id) or {}
        given = {str(stored.get("value")), str(stored.get("option")), *map(str, stored.get("options") or []),
                 *map(str, stored.get("order") or [])}
        if value in given:
            return
    await _other_question_tap(callback, manager, spec)


async def _other_question_tap(callback: CallbackQuery, manager: DialogManager, spec: CampaignSpec) -> None:
    manager.dialog_data["hint"] = "other_question"
    await answer_tap(callback, _hint(_tr(manager, spec), "other_question"))


async def on_budget(callback: CallbackQuery, widget: Any, manager: DialogManager, item_id: str) -> None:
    d = manager.dialog_data
    parsed = _parse_item(item_id)
    if parsed is None or "q" not in d:
        return
    spec, q = await _current(manager)
    if parsed[0] != d["q"]:
        await _other_question_tap(callback, manager, spec)
        return
    if q.type != "budget" or len(parsed[1]) < 2:
        return
    op, oid = parsed[1][0], parsed[1][1:]
    if oid not in q.option_ids:
        return
    coins = {o: int((d.get("draft") or {}).get(o, 0)) for o in q.option_ids}
    left = (q.tokens or 10) - sum(coins.values())
    # a tap that cannot change the coins says why: otherwise the message stays as it was
    if op == "+":
        if left <= 0:
            d["hint"] = "no_coins_left"
            return
        coins[oid] += 1
    elif op == "-":
        if coins[oid] <= 0:
            d["hint"] = "no_coins_here"
            return
        coins[oid] -= 1
    d["draft"] = coins
    d.pop("hint", None)


async def on_done(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    spec, q = await _current(manager)
    if q.type == "multi":
        chosen = list(d.get("draft") or [])
        if not chosen:
            d["hint"] = "choose_one"
            return
        if OTHER in chosen:
            held: dict[str, Any] = ({"voice": d["other_voice"]} if d.get("other_voice")
                                    else {"text": d["other_text"]} if d.get("other_text") else {})
            if held and await _record(manager, q, {"options": chosen, **held}):
                await _advance(manager, spec, q)
                return
            d.pop("other_text", None)
            await _ask_other(manager, d["q"])
            return
        if await _record(manager, q, {"options": chosen}):
            await _advance(manager, spec, q)
    elif q.type == "budget":
        coins = d.get("draft") or {}
        if sum(coins.values()) != (q.tokens or 10):
            d["hint"] = "spend_all"
            return
        if await _record(manager, q, {"coins": coins}):
            await _advance(manager, spec, q)
    elif q.type == "rank":
        if len(d.get("draft") or []) == _need_rank(q) and await _record(manager, q, {"order": d["draft"]}):
            await _advance(manager, spec, q)
    elif q.type == "text":
        answers = await svc.answers_of(session_of(manager), d["r"])
        if answers.get(q.id):
            await _advance(manager, spec, q)


async def on_undo(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    draft = list(manager.dialog_data.get("draft") or [])
    if draft:
        draft.pop()
    manager.dialog_data["draft"] = draft


async def on_continue(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    spec, q = await _current(manager)
    if q.type == "info" and await _record(manager, q, {"seen": True}):
        await _advance(manager, spec, q)


async def on_skip(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    spec, q = await _current(manager)
    if q.optional and await _record(manager, q, None):
        await _advance(manager, spec, q)


async def on_back(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    spec, q = await _current(manager)
    answers = await svc.answers_of(session_of(manager), d["r"])
    prev = previous_question(spec, q.id, answers)
    if prev is not None:
        await _open_question(manager, spec, prev, answers)
    elif spec.groups:
        cc = await _campaign(manager)
        response = await _response(manager)
        assert response is not None
        await _open_dimension(manager, cc, response, len(spec.groups) - 1)


async def on_message(message: Message, widget: Any, manager: DialogManager) -> None:
    """Anything typed or sent while a question is shown."""
    d = manager.dialog_data
    if "q" not in d:
        return
    spec, q = await _current(manager)
    if q.type == "multi" and q.other and OTHER in (d.get("draft") or []):
        # "something else" is ticked: what they type (or say) now is its text (Done will not ask again)
        if message.voice is not None:
            d["other_voice"] = _voice_of(message)
            d.pop("other_text", None)
            d.pop("hint", None)
            return
        text = _other_text(manager, message)
        if text is not None:
            d["other_text"] = scrub(text)
            d.pop("other_voice", None)
        return
    if q.type != "text":
        _stray(manager, "use_buttons")
        return
    if message.text is not None and not message.text.startswith("/"):
        text = message.text
        if len(text) > MAX_TEXT_ANSWER:
            d["hint"], d["hint_n"] = "too_long", len(text)
            return
        if not has_visible_text(text):  # spaces, zero-width or direction marks only
            _stray(manager, "text_or_voice" if q.voice else "text_expected")
            return
        d.pop("hint", None)
        if await _record(manager, q, {"text": text}):
            await edits.remember(manager.middleware_data, message, d["c"], d["r"], q.id)
            await _advance(manager, spec, q)
        return
    if message.voice is not None and q.voice:
        d.pop("hint", None)
        if await _record(manager, q, {"voice": _voice_of(message)}):
            await _keep_audio(manager, message, q)
            await _advance(manager, spec, q)
        return
    _stray(manager, "text_or_voice" if q.voice else "text_expected")


def _voice_of(message: Message) -> dict[str, Any]:
    assert message.voice is not None
    return {"file_id": message.voice.file_id, "duration": int(message.voice.duration or 0)}


async def _keep_audio(manager: DialogManager, message: Message, q: Question) -> None:
    """The voice note's sound too, when this bot is set to keep it."""
    config = manager.middleware_data.get("config")
    if config is not None and config.store_voice_audio and message.bot is not None and message.voice:
        from bot.services.voice import keep_audio

        await keep_audio(session_of(manager), message.bot, manager.middleware_data["keys"],
                         manager.dialog_data["r"], q.id, message.voice.file_id)


async def on_unexpected(message: Message, widget: Any, manager: DialogManager) -> None:
    if manager.dialog_data.get("hint") == "closed":  # "this survey is closed now" stays as it is
        manager.show_mode = ShowMode.NO_UPDATE
        return
    _stray(manager, "use_buttons")


# --------------------------------------------------------------------------- "something else"

async def _ask_other(manager: DialogManager, qi: int) -> None:
    """The "tell us in a few words" screen for question `qi`, without a hint left from before."""
    d = manager.dialog_data
    d.pop("hint", None)
    d.pop("hint_n", None)
    d["other_for"] = qi
    await manager.switch_to(Survey.other)


def _other_text(manager: DialogManager, message: Message) -> str | None:
    """The "something else" text in `message`, or None with the hint that says what is wrong."""
    d = manager.dialog_data
    text = message.text
    if text is None or not has_visible_text(text) or text.startswith("/"):
        _stray(manager, "other_text")
        return None
    if len(text) > MAX_TEXT_ANSWER:
        d["hint"], d["hint_n"] = "too_long", len(text)
        return None
    d.pop("hint", None)
    return text


async def get_other(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    d = dialog_manager.dialog_data
    cc = await _campaign(dialog_manager)
    t = _tr(dialog_manager, cc.spec)
    _ = t.gettext
    q = cc.spec.questions[d.get("other_for", d.get("q", 0))]
    parts = [_e(cc.spec.text(q.text, t.lang)), _e(_("Please tell us in a few words, and send it.")),
             _e(_("Or send a voice note."))]
    hint = d.get("hint")
    if hint in {"other_text", "too_long", "nothing_erased"}:  # set by a text sent on this screen, or /forget
        msg = _too_long(t, d.get("hint_n", 0)) if hint == "too_long" else _hint(t, hint)
        parts.append(f"<i>{_e(msg)}</i>")
    return {"text": "\n\n".join(parts), "back": _("Back")}


async def on_other_text(message: Message, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    spec, q = await _current(manager)
    words: dict[str, Any]
    if message.voice is not None:  # said instead of written: taken wherever text is
        words = {"voice": _voice_of(message)}
        d.pop("hint", None)
    else:
        text = _other_text(manager, message)
        if text is None:
            return
        words = {"text": text}
    if q.type == "choice":
        value: dict[str, Any] = {"option": OTHER, **words}
    else:
        value = {"options": list(d.get("draft") or [OTHER]), **words}
    if await _record(manager, q, value):
        if "voice" in words:
            await _keep_audio(manager, message, q)
        else:
            await edits.remember(manager.middleware_data, message, d["c"], d["r"], q.id)
        await _advance(manager, spec, q)


async def on_other_back(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    manager.dialog_data.pop("hint", None)
    await manager.switch_to(Survey.question)


# --------------------------------------------------------------------------- the end

async def get_done(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    d = dialog_manager.dialog_data
    cc = await _campaign(dialog_manager)
    t = _tr(dialog_manager, cc.spec)
    _ = t.gettext
    choice = d.get("outcome")
    if d.get("declined"):
        text = _("That is fine. If you change your mind, send /start.")
    elif d.get("finished_before"):
        text = _("You have already taken part in this survey. Thank you!")
    elif choice == "yes":
        text = _("Thank you. We will send you a short message when we know what changes.")
    elif choice == "no":
        text = _("Thank you. You will not get more messages about this survey.")
    else:
        text = "\n\n".join([_("Thank you! Your answers are saved."),
                            _("Would you like a short message later about what changes because of "
                              "what people said?")])
    lines = [_e(text), *(_hint_line(t, d, "use_buttons") if _asks_outcome(d) else []),
             *_hint_line(t, d, "nothing_erased")]
    return {"text": "\n\n".join(lines), "ask": _asks_outcome(d), "yes": _("Yes, tell me"),
            "no": _("No, thanks")}


def _asks_outcome(d: dict[str, Any]) -> bool:
    """The end screen asks "a message later about what changes?" (and has not been answered)."""
    return not d.get("declined") and not d.get("finished_before") and d.get("outcome") is None and "r" in d


async def on_done_input(message: Message, widget: Any, manager: DialogManager) -> None:
    _stray(manager, "use_buttons" if _asks_outcome(manager.dialog_data) else "none")


async def on_outcome(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    d = manager.dialog_data
    if not _asks_outcome(d):
        return  # a second tap, or a button of another screen: the first answer holds
    wants = widget.widget_id == "y"
    if "r" in d:
        await svc.set_wants_outcome(session_of(manager), d["r"], wants)
    d["outcome"] = "yes" if wants else "no"


# --------------------------------------------------------------------------- the dialog

def older_message_notice(data: dict[str, Any]) -> str:
    """What a tap on an older message of a dialog is told, in the dialog's language."""
    from aiogram_dialog.api.internal import CONTEXT_KEY

    context = data.get(CONTEXT_KEY)
    lang = (context.dialog_data.get("lang") if context is not None else None) or data.get("lang")
    return tr(lang).gettext(HINTS["other_question"])


def build_survey_dialog() -> Dialog:
    """A fresh survey dialog (a Dialog is a Router and can be attached to one dispatcher only)."""
    item = itemgetter(0)
    label = Format("{item[1]}")
    return Dialog(
        Window(Format("{text}"),
               Column(Select(label, id="l", item_id_getter=item, items="languages", on_click=on_language)),
               MessageInput(on_unexpected),
               state=Survey.language, getter=get_language),
        Window(Format("{text}"),
               Row(Button(Format("{agree}"), id="y", on_click=on_agree),
                   Button(Format("{not_now}"), id="n", on_click=on_not_now), when="open"),
               MessageInput(on_unexpected),
               state=Survey.consent, getter=get_consent),
        Window(Format("{text}"),
               Column(Select(label, id="g", item_id_getter=item, items="group_items", on_click=on_group)),
               Row(Button(Format("{back}"), id="k", on_click=on_group_back, when="can_back"),
                   Button(Format("{done}"), id="d", on_click=on_group_done, when="show_done")),
               MessageInput(on_unexpected),
               state=Survey.group, getter=get_group),
        Window(Format("{text}"),
               Select(label, id="r", item_id_getter=item, items="rating_items", on_click=on_option,
                      when="is_rating"),
               Group(Select(label, id="R", item_id_getter=item, items="rating_items", on_click=on_option),
                     width=5, when="is_rating_wide"),
               Column(Select(label, id="o", item_id_getter=item, items="option_items", on_click=on_option),
                      when="has_options"),
               Group(Select(label, id="b", item_id_getter=item, items="budget_items", on_click=on_budget),
                     width=3, when="is_budget"),
               Row(Button(Format("{undo}"), id="u", on_click=on_undo, when="show_undo"),
                   Button(Format("{done}"), id="d", on_click=on_done, when="show_done"),
                   Button(Format("{cont}"), id="c", on_click=on_continue, when="is_info")),
               Row(Button(Format("{back}"), id="k", on_click=on_back, when="can_back"),
                   Button(Format("{skip}"), id="s", on_click=on_skip, when="can_skip")),
               MessageInput(on_message),
               state=Survey.question, getter=get_question),
        Window(Format("{text}"),
               Row(Button(Format("{back}"), id="k", on_click=on_other_back)),
               MessageInput(on_other_text),
               state=Survey.other, getter=get_other),
        Window(Format("{text}"),
               Row(Button(Format("{yes}"), id="y", on_click=on_outcome),
                   Button(Format("{no}"), id="n", on_click=on_outcome), when="ask"),
               MessageInput(on_done_input),
               state=Survey.done, getter=get_done),
        on_start=on_start,
        on_process_result=on_language_result,
    )


async def on_language_result(start_data: Any, result: Any, manager: DialogManager) -> None:
    """Back from /language (speak the new language from now on) or from /forget's Cancel."""
    if not isinstance(result, dict) or "c" not in manager.dialog_data:
        return
    if result.get("forget") == "cancelled":
        manager.dialog_data["hint"] = "nothing_erased"  # said on the screen they come back to
        return
    cc = await _campaign(manager)
    code = result.get("lang")
    if code in cc.spec.languages:
        manager.dialog_data["lang"] = code
        response = await _response(manager)
        if response is not None:
            response.language = code


async def resume_target(session: AsyncSession, participant: Participant) -> str | None:
    """The open campaign this participant started but did not finish, newest first."""
    from sqlalchemy import select

    rows = await session.execute(
        select(Response.campaign_id).where(Response.participant_id == participant.id,
                                           Response.completed_at.is_(None),
                                           Response.consent_version.is_not(None))
        .order_by(Response.started_at.desc()))
    for (cid,) in rows.all():
        cc = await load_campaign(session, cid)
        if cc is not None:
            return cid
    return None
