"""/admin in the chat, for the Telegram users in COASSESS_ADMIN_IDS.

Campaigns with their counts; open and close; live participation per group against the
baseline (small counts hidden as "<k"); a new partner invite whose link and QR code come
back as a photo; an invitation broadcast after a confirmation that says how many will get it.

Everyone else gets the ordinary participant experience: their /admin falls through to the
participant fallback. Every admin widget id starts with `A_`, so an admin button tapped by
anyone else (a forged callback) is recognised, answered, refused and logged before the
dialogs look at it. Actions are audited under the administrator's HMAC pseudonym; no
Telegram id is logged or stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import html
import logging
from collections import Counter
from collections.abc import Awaitable, Callable
from operator import itemgetter
from typing import Any

from aiogram import Bot, Router
from aiogram.filters import Command, Filter
from aiogram.types import BufferedInputFile, CallbackQuery, Message, TelegramObject, User
from aiogram_dialog import Dialog, DialogManager, ShowMode, StartMode, Window
from aiogram_dialog.utils import remove_intent_id
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row, Select
from aiogram_dialog.widgets.text import Format
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import PREFER_NOT, CampaignSpec
from bot.campaigns.store import campaign_state
from bot.db import Database
from bot.models import Campaign, Response
from bot.services import audit
from bot.services.participants import Keys
from bot.services.participation import Participation, participation, protect_participation  # noqa: F401 (re-exported)
from dialogs.filters import DataIs, private_chat
from dialogs.i18n import Tr, short_label, tr
from dialogs.states import Admin
from dialogs.screens import answer_tap

log = logging.getLogger(__name__)

PREFIX = "A_"
TEXT_LIMIT = 4000
_background: set[asyncio.Task[None]] = set()


def N_(message: str) -> str:
    """Mark a message for extraction; it is translated where it is shown."""
    return message


# A campaign's state in the officer's language (campaign_state gives the English word).
STATE_NAMES = {"draft": N_("draft"), "scheduled": N_("scheduled"), "open": N_("open"),
               "closed": N_("closed")}


def state_name(t: Tr, state: str) -> str:
    return t.gettext(STATE_NAMES[state]) if state in STATE_NAMES else state


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _fit(text: str) -> str:
    """Keep a message under Telegram's limit, cutting between lines (so no tag is cut open)."""
    if len(text) <= TEXT_LIMIT:
        return text
    return text[: text.rfind("\n", 0, TEXT_LIMIT - 2)] + "\n…"


# --------------------------------------------------------------------------- who is an admin

class IsAdmin(Filter):
    """The event comes from a Telegram user listed in COASSESS_ADMIN_IDS."""

    def __init__(self, admin_ids: frozenset[int]) -> None:
        self.admin_ids = admin_ids

    async def __call__(self, event: TelegramObject, event_from_user: User | None = None) -> bool:
        return event_from_user is not None and event_from_user.id in self.admin_ids


def is_admin_data(data: str | None) -> bool:
    """Callback data of an admin button (with or without aiogram-dialog's intent id)."""
    if not data:
        return False
    return remove_intent_id(data)[1].startswith(PREFIX)


async def refuse(callback: CallbackQuery, lang: str | None = None) -> None:
    """Stop the spinner, say no, and log the attempt without saying who made it."""
    _ = tr(lang or "en").gettext
    with contextlib.suppress(Exception):
        await answer_tap(callback, _("This button is not for you."))
    log.warning("refused admin callback from a non-admin")


class RefuseForgedTaps:
    """Outer callback middleware on the dispatcher: an admin button from a non-admin goes no further.

    It must run before aiogram-dialog loads the dialog context by the intent id in the data
    (a copied admin intent would otherwise surface as an unknown intent, far from here).
    """

    def __init__(self, admin_ids: frozenset[int]) -> None:
        self.admin_ids = admin_ids

    async def __call__(self, handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
                       event: TelegramObject, data: dict[str, Any]) -> Any:
        if isinstance(event, CallbackQuery) and is_admin_data(event.data) \
                and event.from_user.id not in self.admin_ids:
            await refuse(event, data.get("lang"))
            return None
        return await handler(event, data)


class AdminRouter(Router):
    """A router that, once attached, puts the forged-tap guard in front of the dialogs."""

    def __init__(self, admin_ids: frozenset[int], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.admin_ids = admin_ids

    def _attach(self, router: Router) -> None:
        Router.parent_router.fset(self, router)  # type: ignore[attr-defined]
        root = router
        while root.parent_router is not None:
            root = root.parent_router
        # Outer middlewares run in the order they are registered: this one is added when the
        # dispatcher includes the admin router, before setup_dialogs adds aiogram-dialog's.
        root.callback_query.outer_middleware(RefuseForgedTaps(self.admin_ids))

    parent_router = property(Router.parent_router.fget, _attach)  # type: ignore[assignment]


# --------------------------------------------------------------------------- participation

def render_participation(part: Participation, t: Tr, k: int) -> str:
    _ = t.gettext
    heading = _("Who is taking part")
    lines = [f"<b>{_e(heading)}</b>",
             _e(_("Agreed to take part: %(n)s") % {"n": part.total_shown})]
    for label, cells in part.dimensions:
        lines.append(f"\n<b>{_e(label)}</b>")
        for c in cells:
            name = c.label or _("not said")
            text = f"• {_e(name)}: {_e(c.shown)}"
            if c.share is not None:
                text += f" ({c.share:.0%})"
            if c.baseline is not None:
                text += " · " + _e(_("population %(share)s") % {"share": f"{c.baseline:.0%}"})
            lines.append(text)
    lines.append("\n" + _e(_("<%(k)s: fewer than %(k)s people, hidden to protect them. "
                            "c: hidden so that a small group cannot be worked out.") % {"k": k}))
    return "\n".join(lines)


# --------------------------------------------------------------------------- helpers

def _t(manager: DialogManager) -> Tr:
    return tr(manager.middleware_data.get("lang") or "en")


def _session(manager: DialogManager) -> AsyncSession:
    return manager.middleware_data["session"]


def _actor(manager: DialogManager) -> str:
    keys: Keys = manager.middleware_data["keys"]
    user: User = manager.middleware_data["event_from_user"]
    return keys.admin(user.id)


async def _campaign(manager: DialogManager) -> tuple[Campaign, CampaignSpec] | None:
    cid = manager.dialog_data.get("c")
    row = await _session(manager).get(Campaign, cid) if cid else None
    return (row, CampaignSpec.model_validate(row.definition)) if row else None


def _title(c: Campaign, lang: str) -> str:
    return c.title.get(lang) or c.title.get(c.languages[0]) or c.id


async def _bot_username(manager: DialogManager, bot: Bot) -> str:
    from bot.services.invites import resolve_bot_username

    config = manager.middleware_data.get("config")
    configured = getattr(config, "bot_username", None) or manager.middleware_data.get("bot_username")
    return await resolve_bot_username(configured, bot)


def _settings(manager: DialogManager) -> Any:
    from bot.settings import get_settings

    return manager.middleware_data.get("runtime_settings") or get_settings()


# --------------------------------------------------------------------------- getters

async def get_home(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = _t(dialog_manager)
    _ = t.gettext
    session = _session(dialog_manager)
    rows = (await session.scalars(select(Campaign).order_by(Campaign.created_at))).all()
    heading = _("Campaigns")
    lines = [f"<b>{_e(heading)}</b>"]
    items = []
    for c in rows:
        state = state_name(t, campaign_state(c))
        # The same protected figures as the campaign's page: small counts shown as "<10".
        part = await participation(session, CampaignSpec.model_validate(c.definition), t.lang)
        lines.append(_e(_("• %(title)s (%(id)s): %(state)s, %(agreed)s taking part, %(done)s finished")
                        % {"title": _title(c, t.lang), "id": c.id, "state": state,
                           "agreed": part.total_shown, "done": part.finished_shown}))
        # cut at a word, so that the state after it still fits on the button
        items.append((c.id, f"{short_label(_title(c, t.lang), 40)} · {state}"))
    if not rows:
        lines.append(_e(_("No campaigns yet. Load one with: coassess campaign load FILE")))
    note = dialog_manager.dialog_data.pop("note", None)
    if note:
        lines.append("\n" + _e(note))
    return {"text": _fit("\n".join(lines)), "campaigns": items, "leave": _("Leave"),
            "console": _("Open the console")}


async def get_campaign(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = _t(dialog_manager)
    _ = t.gettext
    found = await _campaign(dialog_manager)
    if found is None:
        return {"text": _e(_("This campaign no longer exists.")), "can_open": False, "can_close": False,
                "exists": False, "back": _("Back"), **_labels(t)}
    c, spec = found
    state = campaign_state(c)
    part = await participation(_session(dialog_manager), spec, t.lang)
    head = [f"<b>{_e(_title(c, t.lang))}</b> ({_e(c.id)})",
            _e(_("State: %(state)s. Opens: %(opens)s. Closes: %(closes)s.")
               % {"state": state_name(t, state), "opens": f"{c.opens:%Y-%m-%d %H:%M}" if c.opens else "–",
                  "closes": f"{c.closes:%Y-%m-%d %H:%M}" if c.closes else "–"}),
            ""]
    text = "\n".join(head) + render_participation(part, t, spec.min_group_size)
    note = dialog_manager.dialog_data.pop("note", None)
    if note:
        text += "\n\n" + _e(note)
    return {"text": _fit(text), "can_open": state != "open", "can_close": state == "open",
            "exists": True, **_labels(t)}


def _labels(t: Tr) -> dict[str, str]:
    _ = t.gettext
    return {"open": _("Open now"), "close": _("Close now"), "invite": _("New invite"),
            "broadcast": _("Send the invitation"), "refresh": _("Refresh"), "back": _("Back"),
            "send": _("Send it"), "cancel": _("Cancel"), "close_it": _("Close it"),
            "make": _("Make it"), "change": _("Change")}


async def get_invite_code(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = _t(dialog_manager)
    _ = t.gettext
    lines = [_("Send the new invite's code, then the partner's name. A code is 1 to 20 letters, "
               "digits and -."),
             _("To preset a group for people who come through it, add dimension=group at the end."),
             _("For example: central-library Central Library")]
    found = await _campaign(dialog_manager)
    example = _group_choices(found[1], t.lang)[:1] if found else []
    if example:
        # a group this campaign has, never one from another campaign's file
        dim, group, _label = example[0]
        lines.append(_("or, with one of this campaign's groups: %(example)s")
                     % {"example": f"central-library Central Library {dim}={group}"})
    problem = dialog_manager.dialog_data.pop("problem", None)
    if problem:
        lines.insert(0, "⚠️ " + problem)
    return {"text": "\n\n".join(_e(x) for x in lines), **_labels(t)}


def _group_choices(spec: CampaignSpec, lang: str) -> list[tuple[str, str, str]]:
    """(dimension, group, label) for every group of the campaign, in its order; a label that two
    dimensions share ("Yes") says its dimension."""
    pairs = [(dim.id, o.id, spec.text(o.text, lang) or o.id)
             for dim in spec.groups for o in dim.options if o.id != PREFER_NOT]
    seen = Counter(label for _, _, label in pairs)
    return [(d, g, label if seen[label] == 1 else f"{d}: {label}") for d, g, label in pairs]


async def get_invite_confirm(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = _t(dialog_manager)
    _ = t.gettext
    d = dialog_manager.dialog_data
    found = await _campaign(dialog_manager)
    if found is None:
        return {"text": _e(_("This campaign no longer exists.")), "groups": [], **_labels(t)}
    c, spec = found
    chosen = {tuple(x) for x in d.get("inv_groups", [])}
    choices = _group_choices(spec, t.lang)
    preset = ", ".join(label for dim, group, label in choices if (dim, group) in chosen) or _("none")
    lines = [_("New invite for “%(title)s”:") % {"title": _title(c, t.lang)},
             _("Code: %(code)s") % {"code": d.get("inv_code", "")},
             _("Partner: %(partner)s") % {"partner": d.get("inv_partner", "")},
             _("Link: %(link)s") % {"link": d.get("inv_link", "")},
             _("Groups filled in for everyone who comes through it: %(groups)s") % {"groups": preset},
             "",
             _("Tap a group to fill it in (tap it again to take it off). Then make the invite, or "
               "change the code or the partner.")]
    problem = d.pop("problem", None)
    if problem:
        lines.insert(0, "⚠️ " + problem)
    items = [(str(i), short_label(("✅ " if (dim, group) in chosen else "") + label))
             for i, (dim, group, label) in enumerate(choices)]
    return {"text": _e("\n".join(lines)), "groups": items, **_labels(t)}


async def get_close_confirm(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    from bot.services.broadcasts import protect_total

    t = _t(dialog_manager)
    found = await _campaign(dialog_manager)
    if found is None:
        return {"text": _e(t.gettext("This campaign no longer exists.")), **_labels(t)}
    c, spec = found
    session = _session(dialog_manager)
    midway, key = (await session.execute(select(func.count(), func.sum(Response.record_key)).where(
        Response.campaign_id == c.id, Response.consented_at.is_not(None), Response.completed_at.is_(None)))).one()
    midway = midway or 0
    # a count of people, protected (and perturbed with its cell key) as every other count the officer sees
    shown = protect_total(midway, spec.min_group_size, int(key or 0))
    form = int(shown) if shown.isdigit() else spec.min_group_size
    text = t.ngettext("Close “%(title)s” (%(id)s) now? Nobody new can start it. %(n)s person is "
                      "mid-way and can still finish.",
                      "Close “%(title)s” (%(id)s) now? Nobody new can start it. %(n)s people are "
                      "mid-way and can still finish.", form) % {"title": _title(c, t.lang), "id": c.id,
                                                               "n": shown}
    return {"text": _e(text), **_labels(t)}


async def get_confirm(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
    t = _t(dialog_manager)
    _ = t.gettext
    d = dialog_manager.dialog_data
    n = int(d.get("bc_count", 0))
    shown = str(d.get("bc_shown", n))  # as `coassess broadcast --dry-run` shows it: "<10" when small
    found = await _campaign(dialog_manager)
    title = _title(found[0], t.lang) if found else ""
    if n:
        langs = ", ".join(f"{lang} {k}" for lang, k in d.get("bc_langs", []))
        # A hidden count takes the plural form of the threshold ("<10 people").
        form = n if shown == str(n) else int(d.get("bc_k", 10))
        text = _e(t.ngettext("The invitation to “%(title)s” will go to %(n)s person (%(langs)s).",
                             "The invitation to “%(title)s” will go to %(n)s people (%(langs)s).", form)
                  % {"title": title, "n": shown, "langs": langs})
        text += "\n\n" + _e(_("Each reads it in their own language. Send it now?"))
    else:
        text = _e(_("Nobody would receive the invitation: everyone who can be invited has finished, "
                    "stopped messages, or already got it."))
    return {"text": text, "can_send": n > 0, **_labels(t)}


# --------------------------------------------------------------------------- actions

async def on_pick(callback: CallbackQuery, widget: Any, manager: DialogManager, campaign_id: str) -> None:
    manager.dialog_data["c"] = campaign_id
    await manager.switch_to(Admin.campaign)


async def on_leave(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.done()


async def on_console(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    """A one-time sign-in link to the web console (a Mini App button when it is served over https)."""
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup, WebAppInfo

    from bot.services.signin import NotAnOfficer, officer_link

    _ = _t(manager).gettext
    s = _settings(manager)
    base = s.web_public_url.rstrip("/")
    if base.startswith("https://"):
        button = InlineKeyboardButton(text=_("Open the console"), web_app=WebAppInfo(url=f"{base}/miniapp"))
    else:
        try:
            config = manager.middleware_data.get("config")
            link = await officer_link(_session(manager), manager.middleware_data["keys"], base,
                                      callback.from_user.id, getattr(config, "admin_ids", None) or s.admin_ids,
                                      s.analyst_ids)
        except NotAnOfficer:
            return
        await _session(manager).commit()  # the link must work before it is sent
        button = InlineKeyboardButton(text=_("Open the console"), url=link)
    if callback.message is not None:
        await manager.middleware_data["bot"].send_message(
            callback.message.chat.id, _e(_("The console in your browser: this button signs you in once, "
                                          "within ten minutes.")),
            reply_markup=InlineKeyboardMarkup(inline_keyboard=[[button]]))


async def on_home(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.switch_to(Admin.home)


async def on_campaign(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.switch_to(Admin.campaign)


async def _set_status(manager: DialogManager, status: str) -> None:
    _ = _t(manager).gettext
    found = await _campaign(manager)
    if found is None:
        return
    c, _spec = found
    c.status = status
    await audit.record(_session(manager), _actor(manager), "open" if status == "open" else "close", c.id,
                       via="chat")
    state = campaign_state(c)
    manager.dialog_data["note"] = _("The campaign is now %(state)s.") % {"state": state_name(_t(manager), state)}
    if status == "open" and state != "open":
        manager.dialog_data["note"] += " " + _("Its closing date has passed: change 'closes' in the "
                                               "campaign file and load it again.")


async def on_open(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await _set_status(manager, "open")


async def on_close(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    # a live campaign is closed only after the officer has read what it means for whom
    await manager.switch_to(Admin.close_confirm)


async def on_close_confirmed(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await _set_status(manager, "closed")
    await manager.switch_to(Admin.campaign)


async def on_new_invite(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.switch_to(Admin.invite_code)


def parse_invite_line(text: str) -> tuple[str, str, list[str]]:
    """`code partner name... [dim=group ...]` (pure)."""
    words = text.split()
    groups = []
    while words and "=" in words[-1]:
        groups.insert(0, words.pop())
    if len(words) < 2:
        raise ValueError("code and partner")
    return words[0], " ".join(words[1:]), groups


async def on_invite_text(message: Message, widget: Any, manager: DialogManager) -> None:
    from bot.services.invites import InviteError, check_code, invite_link, parse_groups
    from bot.settings import ConfigurationError

    t = _t(manager)
    _ = t.gettext
    found = await _campaign(manager)
    if found is None:
        await manager.switch_to(Admin.home)
        return
    c, spec = found
    try:
        code, partner, group_words = parse_invite_line(message.text or "")
    except ValueError:
        manager.dialog_data["problem"] = _("Please send the code and the partner's name on one line.")
        return
    bot: Bot = manager.middleware_data["bot"]
    try:
        groups = parse_groups(group_words, spec)
        check_code(code, spec.id)
        link = invite_link(await _bot_username(manager, bot), c.id, code)
    except (InviteError, ConfigurationError) as exc:
        manager.dialog_data["problem"] = str(exc)
        return
    # nothing is made yet: the officer sees the code, the partner and the link, and may add the
    # campaign's groups with buttons
    manager.dialog_data.update(inv_code=code, inv_partner=" ".join(partner.split()), inv_link=link,
                               inv_groups=[[d, g] for d, gs in groups.items() for g in gs])
    await manager.switch_to(Admin.invite_confirm)


async def on_invite_group(callback: CallbackQuery, widget: Any, manager: DialogManager, item: str) -> None:
    found = await _campaign(manager)
    if found is None or not item.isdigit():
        return
    choices = _group_choices(found[1], _t(manager).lang)
    if int(item) >= len(choices):
        return
    dim, group, _label = choices[int(item)]
    chosen = [list(x) for x in manager.dialog_data.get("inv_groups", [])]
    chosen = [x for x in chosen if x != [dim, group]] if [dim, group] in chosen else [*chosen, [dim, group]]
    manager.dialog_data["inv_groups"] = chosen


async def on_invite_change(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    await manager.switch_to(Admin.invite_code)


async def on_invite_make(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    from bot.services.invites import InviteError, create_invite, qr_png

    t = _t(manager)
    _ = t.gettext
    found = await _campaign(manager)
    if found is None or callback.message is None:
        await manager.switch_to(Admin.home)
        return
    c, spec = found
    d = manager.dialog_data
    code, partner, link = d.get("inv_code", ""), d.get("inv_partner", ""), d.get("inv_link", "")
    groups: dict[str, list[str]] = {}
    for dim, group in d.get("inv_groups", []):
        groups.setdefault(dim, []).append(group)
    session = _session(manager)
    bot: Bot = manager.middleware_data["bot"]
    try:
        invite = await create_invite(session, spec, code, partner, groups)
    except InviteError as exc:
        d["problem"] = str(exc)
        return
    await audit.record(session, _actor(manager), "invite", c.id, code=invite.code, partner=invite.partner,
                       groups=groups, via="chat")
    # Stored before the photo goes out: the link on the photo must already work.
    await session.commit()
    caption = f"<b>{_e(invite.partner)}</b>\n{_e(link)}"
    await bot.send_photo(callback.message.chat.id, BufferedInputFile(qr_png(link), f"{c.id}-{code}.png"),
                         caption=caption[:1024])
    manager.dialog_data["note"] = _("Invite %(code)s is ready: print the QR code or share the link. "
                                    "A printable poster: coassess invite create on the command line.") \
        % {"code": code}
    await manager.switch_to(Admin.campaign, show_mode=ShowMode.SEND)


async def on_broadcast(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    from bot.services.broadcasts import InvitationFilters, breakdown, preview_invitation, protect_reach

    _ = _t(manager).gettext
    found = await _campaign(manager)
    if found is None:
        return
    c, spec = found
    if campaign_state(c) != "open":
        manager.dialog_data["note"] = _("Open the campaign first: people who tap the invitation "
                                        "could not answer yet.")
        return
    # who the send would really message: after an earlier send (here or on the command line),
    # only the people of its list not sent yet
    recipients = (await preview_invitation(_session(manager), c, InvitationFilters())).recipients
    # Protected as in `coassess broadcast --dry-run` (the same selection, the same tables), of
    # which this shows the total and the languages, in the campaign's order.
    b = breakdown(recipients, c.languages, [dim.id for dim in spec.groups])
    reach = protect_reach(b, spec)
    manager.dialog_data["bc_count"] = b.total
    manager.dialog_data["bc_shown"] = reach.total
    manager.dialog_data["bc_k"] = reach.k
    manager.dialog_data["bc_langs"] = [(lang, shown) for lang, shown in reach.table("by language")
                                       if b.languages.get(lang)]
    await manager.switch_to(Admin.broadcast_confirm)


async def on_send(callback: CallbackQuery, widget: Any, manager: DialogManager) -> None:
    _ = _t(manager).gettext
    found = await _campaign(manager)
    if found is None or callback.message is None:
        return
    c, _spec = found
    bot: Bot = manager.middleware_data["bot"]
    try:
        username = await _bot_username(manager, bot)
    except Exception as exc:  # noqa: BLE001 - a configuration problem the admin can read
        manager.dialog_data["note"] = str(exc)
        await manager.switch_to(Admin.campaign)
        return
    start_broadcast(manager.middleware_data["db"], manager.middleware_data["keys"], bot, c,
                    username=username, actor=_actor(manager), chat_id=callback.message.chat.id,
                    lang=_t(manager).lang, settings=_settings(manager))
    manager.dialog_data["note"] = _("Sending has started. I will tell you here when it is done.")
    await manager.switch_to(Admin.campaign)


def start_broadcast(db: Database, keys: Keys, bot: Bot, campaign: Campaign, *, username: str, actor: str,
                    chat_id: int, lang: str, settings: Any) -> asyncio.Task[None]:
    """Send the invitation in the background; the admin hears back in the chat when it is done."""
    from bot.services.broadcasts import InvitationFilters, plan_invitation, send_plan
    from bot.services.delivery import DeliveryAborted
    from bot.services.lease import SenderBusy, sender_lease

    t = tr(lang)
    _ = t.gettext

    async def run() -> None:
        try:
            async with sender_lease(db, settings.redis_url):
                async with db.session() as s:
                    plan = await plan_invitation(s, campaign, InvitationFilters(), actor, username)
                summary = None
                if plan.to_send:
                    # this run's own figures, never an earlier run's
                    summary = await send_plan(db, keys, bot, plan, actor, campaign.id,
                                              rate=settings.broadcast_rate,
                                              per_chat_interval=settings.broadcast_per_chat_interval)
            if summary is None:
                text = _("Nothing was sent: everyone this invitation is for has already got it, "
                         "finished, or stopped messages.")
            else:
                text = "\n".join([
                    _("The invitation to “%(title)s” is done.") % {"title": _title(campaign, lang)},
                    _("Sent: %(n)s") % {"n": summary.sent},
                    _("Blocked the bot (now stopped): %(n)s") % {"n": summary.stopped},
                    _("Failed: %(n)s") % {"n": summary.failed},
                    _("Skipped: %(n)s") % {"n": summary.skipped},
                    _("Uncertain (interrupted, not sent again): %(n)s") % {"n": summary.uncertain},
                ])
        except SenderBusy:
            text = _("Another broadcast is being sent right now. Try again when it has finished.")
        except DeliveryAborted as exc:
            text = str(exc)
        except Exception as exc:  # noqa: BLE001 - tell the admin; the log names the error class only
            log.error("background broadcast failed: %s", exc.__class__.__name__)
            text = _("The broadcast stopped because of an error. Start it again to continue: "
                     "nobody will get a second copy.")
        with contextlib.suppress(Exception):
            await bot.send_message(chat_id, _e(text))

    # A fresh context: the update's database session must not leak into a task that outlives it.
    task = asyncio.get_running_loop().create_task(run(), context=contextvars.Context())
    _background.add(task)
    task.add_done_callback(_background.discard)
    return task


async def on_text_elsewhere(message: Message, widget: Any, manager: DialogManager) -> None:
    return None


# --------------------------------------------------------------------------- assembly

def build_admin_dialog() -> Dialog:
    return Dialog(
        Window(
            Format("{text}"),
            Column(Select(Format("{item[1]}"), id="A_c", item_id_getter=itemgetter(0), items="campaigns",
                          on_click=on_pick)),
            Button(Format("{console}"), id="A_w", on_click=on_console),
            Button(Format("{leave}"), id="A_q", on_click=on_leave),
            MessageInput(on_text_elsewhere),
            state=Admin.home, getter=get_home,
        ),
        Window(
            Format("{text}"),
            Row(Button(Format("{open}"), id="A_o", on_click=on_open, when="can_open"),
                Button(Format("{close}"), id="A_x", on_click=on_close, when="can_close")),
            Row(Button(Format("{invite}"), id="A_i", on_click=on_new_invite, when="exists"),
                Button(Format("{broadcast}"), id="A_b", on_click=on_broadcast, when="can_close")),
            Row(Button(Format("{refresh}"), id="A_r", on_click=on_campaign),
                Button(Format("{back}"), id="A_h", on_click=on_home)),
            MessageInput(on_text_elsewhere),
            state=Admin.campaign, getter=get_campaign,
        ),
        Window(
            Format("{text}"),
            Button(Format("{back}"), id="A_k", on_click=on_campaign),
            MessageInput(on_invite_text, content_types=["text"]),
            state=Admin.invite_code, getter=get_invite_code,
        ),
        Window(
            Format("{text}"),
            Row(Button(Format("{send}"), id="A_y", on_click=on_send, when="can_send"),
                Button(Format("{cancel}"), id="A_n", on_click=on_campaign)),
            MessageInput(on_text_elsewhere),
            state=Admin.broadcast_confirm, getter=get_confirm,
        ),
        Window(
            Format("{text}"),
            Row(Button(Format("{close_it}"), id="A_z", on_click=on_close_confirmed),
                Button(Format("{cancel}"), id="A_n", on_click=on_campaign)),
            MessageInput(on_text_elsewhere),
            state=Admin.close_confirm, getter=get_close_confirm,
        ),
        Window(
            Format("{text}"),
            Group(Select(Format("{item[1]}"), id="A_g", item_id_getter=itemgetter(0), items="groups",
                         on_click=on_invite_group), width=2),
            Row(Button(Format("{make}"), id="A_m", on_click=on_invite_make),
                Button(Format("{change}"), id="A_e", on_click=on_invite_change),
                Button(Format("{cancel}"), id="A_k", on_click=on_campaign)),
            MessageInput(on_text_elsewhere),
            state=Admin.invite_confirm, getter=get_invite_confirm,
        ),
    )


def build_admin_router(admin_ids: frozenset[int]) -> Router:
    """/admin and the admin dialog, for `admin_ids` only; a fresh router per dispatcher."""
    router = AdminRouter(frozenset(admin_ids), name="admin")
    is_admin = IsAdmin(frozenset(admin_ids))

    @router.message(Command("admin"), private_chat, is_admin)
    async def cmd_admin(message: Message, dialog_manager: DialogManager) -> None:
        await dialog_manager.start(Admin.home, mode=StartMode.RESET_STACK, show_mode=ShowMode.SEND)

    @router.callback_query(DataIs(is_admin_data), ~is_admin)
    async def forged(callback: CallbackQuery, lang: str | None = None) -> None:
        # Reached only when the dispatcher-level guard is not installed (a router used alone).
        await refuse(callback, lang)

    dialog = build_admin_dialog()
    dialog.message.filter(is_admin)
    dialog.callback_query.filter(is_admin)
    router.include_router(dialog)
    return router
