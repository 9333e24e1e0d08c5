"""Partner invites: the link, its QR code, a printable poster, and the responses each brought.

A trusted partner (a library, a mosque, a community association) hands out its own link, so
that reach can be measured per partner and people who come through it can have their group
preset (the invite's `groups`).
"""

from __future__ import annotations

import hashlib
import html
import io
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Bot
from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.campaigns.schema import INVITE_CODE_PATTERN, CampaignSpec
from bot.db import Database
from bot.models import BotProfile, Campaign, Invite, Response, utcnow
from bot.settings import ConfigurationError
from dialogs.commands import start_payload
from dialogs.i18n import RTL_LANGUAGES, base_language, tr

USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{3,31}$")
MAX_PAYLOAD = 64


class InviteError(ValueError):
    """An invite cannot be created as asked; the message says what to change."""


# --------------------------------------------------------------------------- the bot's name

def clean_username(value: str) -> str:
    name = value.strip().removeprefix("https://t.me/").removeprefix("@").strip("/")
    if not USERNAME.match(name):
        raise ConfigurationError(
            f"'{value}' is not a Telegram bot username. Set COASSESS_BOT_USERNAME to the name "
            "@BotFather gave your bot, such as CouncilSurveyBot (without the @).")
    return name


async def resolve_bot_username(configured: str | None, bot: Bot | None = None) -> str:
    """COASSESS_BOT_USERNAME, else the username Telegram reports for the token (getMe)."""
    if configured:
        return clean_username(configured)
    if bot is not None:
        try:
            me = await bot.get_me()
        except Exception as exc:  # noqa: BLE001 - network, wrong token: say what to do instead
            raise ConfigurationError(
                f"could not ask Telegram for the bot's username ({exc.__class__.__name__}). "
                "Set COASSESS_BOT_USERNAME to your bot's username (without the @).") from exc
        if me.username:
            return clean_username(me.username)
    raise ConfigurationError(
        "the bot's username is needed to make links. Set COASSESS_BOT_USERNAME to the name "
        "@BotFather gave your bot (without the @), or set COASSESS_BOT_TOKEN so it can be looked up.")


def _token_key(token: str) -> str:
    # the token is a secret: only its hash is kept, to tell which bot a username belongs to
    return hashlib.sha256(token.encode()).hexdigest()


async def remembered_username(db: Database, token: str | None) -> str | None:
    """The username getMe gave earlier for this token, if any."""
    if not token:
        return None
    async with db.session() as s:
        row = await s.get(BotProfile, _token_key(token))
        return row.username if row else None


async def keep_username(session: AsyncSession, token: str | None, username: str | None) -> None:
    """Keep (flushed, not committed) the username getMe gave for this token."""
    if not token or not username:
        return
    row = await session.get(BotProfile, _token_key(token))
    if row is None:
        session.add(BotProfile(token_hash=_token_key(token), username=clean_username(username)))
    elif row.username != clean_username(username):
        row.username, row.resolved_at = clean_username(username), utcnow()
    await session.flush()


async def remember_username(db: Database, token: str | None, username: str | None) -> None:
    """Keep the username getMe gave for this token, so no command has to ask again."""
    if not token or not username:
        return
    async with db.session() as s:
        await keep_username(s, token, username)
        await s.commit()


async def known_bot_username(db: Database, configured: str | None, token: str | None,
                             bot: Bot | None = None) -> str:
    """COASSESS_BOT_USERNAME, else the username remembered for the token, else getMe (remembered)."""
    if configured:
        return clean_username(configured)
    known = await remembered_username(db, token)
    if known:
        return known
    username = await resolve_bot_username(None, bot)
    await remember_username(db, token, username)
    return username


def invite_link(bot_username: str, campaign_id: str, code: str | None = None) -> str:
    return f"https://t.me/{bot_username}?start={start_payload(campaign_id, code)}"


# --------------------------------------------------------------------------- invites

def parse_groups(values: Iterable[str], campaign: CampaignSpec) -> dict[str, list[str]]:
    """`dim=value` options checked against the campaign's group dimensions (pure).

    Repeating a dimension lists alternatives (community=arabic community=somali).
    """
    dims = {d.id: d for d in campaign.groups}
    out: dict[str, list[str]] = {}
    for raw in values:
        dim, sep, group = raw.partition("=")
        dim, group = dim.strip(), group.strip()
        if not sep or not dim or not group:
            raise InviteError(f"'{raw}' is not a group: write it as dimension=group, "
                              "for example community=arabic")
        if dim not in dims:
            known = ", ".join(dims) or "none (this campaign asks about no groups)"
            raise InviteError(f"campaign '{campaign.id}' has no group dimension '{dim}'. "
                              f"Its dimensions are: {known}")
        allowed = [o.id for o in dims[dim].options]
        if group not in allowed:
            raise InviteError(f"'{group}' is not a group of '{dim}'. Use one of: {', '.join(allowed)}")
        chosen = out.setdefault(dim, [])
        if group not in chosen:
            chosen.append(group)
    for dim, chosen in out.items():
        if len(chosen) > 1 and not dims[dim].multiple:
            raise InviteError(f"'{dim}' allows one group per person, but {len(chosen)} were given "
                              f"({', '.join(chosen)})")
    return out


def check_code(code: str, campaign_id: str) -> None:
    if not re.match(INVITE_CODE_PATTERN, code):
        raise InviteError(f"'{code}' cannot be an invite code: use 1 to 20 letters, digits and - "
                          "(no spaces or _), for example central-library")
    if len(start_payload(campaign_id, code)) > MAX_PAYLOAD:
        raise InviteError(f"the link for '{code}' would be too long for Telegram: use a shorter code")


def _clean_partner(partner: str) -> str:
    partner = " ".join(partner.split())
    if not partner:
        raise InviteError("the partner's name is empty: give the name people know them by, "
                          "for example --partner \"Central Library\"")
    if len(partner) > 200:
        raise InviteError("the partner's name is longer than 200 characters: shorten it")
    return partner


def _describe(invite: Invite) -> str:
    groups = "; ".join(f"{d}={','.join(g)}" for d, g in (invite.groups or {}).items())
    return invite.partner + (f", preset groups {groups}" if groups else "")


async def create_invite(session: AsyncSession, campaign: CampaignSpec, code: str, partner: str,
                        groups: Mapping[str, Sequence[str]] | None = None) -> Invite:
    """Store a new invite (flushed, not committed); a code already used is refused."""
    invite, created = await find_or_create_invite(session, campaign, code, partner, groups,
                                                  reuse=False)
    return invite


async def find_or_create_invite(session: AsyncSession, campaign: CampaignSpec, code: str,
                                partner: str, groups: Mapping[str, Sequence[str]] | None = None,
                                *, reuse: bool = True) -> tuple[Invite, bool]:
    """The invite with this code, and whether it is new (flushed, not committed).

    With `reuse`, an invite that already exists for the same partner and groups (one written
    in the campaign file, or made before) is returned as it is, so that its link and poster
    can be made again; any other use of a taken code is refused, saying what it is for.
    """
    check_code(code, campaign.id)
    partner = _clean_partner(partner)
    wanted = {d: list(g) for d, g in (groups or {}).items()}
    existing = await session.scalar(select(Invite).where(Invite.campaign_id == campaign.id,
                                                         Invite.code == code))
    if existing is not None:
        if reuse and existing.partner == partner and dict(existing.groups or {}) == wanted:
            return existing, False
        raise InviteError(
            f"campaign '{campaign.id}' already has an invite '{code}' ({_describe(existing)}). "
            "To make its link and poster again, give exactly that partner and those groups; "
            "for another partner choose another code. See them all with: "
            f"coassess invite list {campaign.id}")
    invite = Invite(campaign_id=campaign.id, code=code, partner=partner, groups=wanted)
    session.add(invite)
    await session.flush()
    return invite, True


@dataclass(frozen=True)
class InviteReach:
    code: str
    partner: str
    groups: dict[str, list[str]]
    started: int
    consented: int
    completed: int
    # sums of the responses' record keys (cell key method): started, consented, completed
    keys: tuple[int, int, int] = (0, 0, 0)


NO_INVITE = "(no invite: shared link or search)"


async def responses_per_invite(session: AsyncSession, campaign_id: str) -> list[InviteReach]:
    """Each invite with the responses that came through it (and one row for no invite), from
    the campaign's running tallies (bot.services.participation.tallied): no response is read."""
    from bot.services.participation import tallied

    invites = (await session.scalars(select(Invite).where(Invite.campaign_id == campaign_id)
                                     .order_by(Invite.created_at, Invite.id))).all()
    counts = await tallied(session, campaign_id)

    def reach(iid: int | None) -> tuple[int, int, int, tuple[int, int, int]]:
        (a, ka), (b, kb), (c, kc) = (counts.reached.get(iid, (0, 0)), counts.invites.get(iid, (0, 0)),
                                     counts.completed.get(iid, (0, 0)))
        return a, b, c, (ka, kb, kc)

    out = [InviteReach(i.code, i.partner, dict(i.groups or {}), *reach(i.id)) for i in invites]
    if None in counts.reached:
        out.append(InviteReach("", NO_INVITE, {}, *reach(None)))
    return out


def record_key_sums(*when: Any) -> list[Any]:
    """SUM(record_key) of the responses, and of those where each column in `when` is set: the
    cell keys of their counts (analysis.disclosure)."""
    return [func.sum(Response.record_key),
            *(func.sum(case((w.is_not(None), Response.record_key), else_=0)) for w in when)]


# --------------------------------------------------------------------------- QR and poster

def qr_png(link: str, scale: int = 12) -> bytes:
    import segno

    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="png", scale=scale, border=4)
    return buf.getvalue()


def qr_svg(link: str, title: str | None = None) -> str:
    import segno

    buf = io.BytesIO()
    segno.make(link, error="m").save(buf, kind="svg", scale=10, border=4, title=title or link)
    return buf.getvalue().decode()


def _qr_inline(link: str) -> str:
    import segno

    # no fixed size: the poster's CSS sets it in millimetres for print
    return segno.make(link, error="m").svg_inline(omitsize=True, border=4, title=link)


def _dir(lang: str) -> str:
    return "rtl" if base_language(lang) in RTL_LANGUAGES else "ltr"


def _e(text: str) -> str:
    return html.escape(text, quote=True)


POSTER_CSS = """
@page { size: A4 portrait; margin: 14mm; }
* { box-sizing: border-box; }
html { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
body { margin: 0; font-family: "Noto Sans", "Noto Naskh Arabic", "Segoe UI", Arial, sans-serif;
       color: #111; background: #fff; }
.sheet { width: 182mm; min-height: 269mm; margin: 0 auto; display: flex; flex-direction: column;
         align-items: center; text-align: center; }
.titles { width: 100%; }
h1 { font-size: 17pt; line-height: 1.25; margin: 0 0 2.5mm; font-weight: 700; }
h1:first-child { font-size: 24pt; margin-bottom: 5mm; }
.titles [dir="rtl"] { font-family: "Noto Naskh Arabic", "Noto Sans Arabic", "Segoe UI", sans-serif; }
.qr { margin: 6mm 0 3mm; }
.qr svg { width: 85mm; height: 85mm; display: block; }
.how { font-size: 12pt; margin: 1mm 0; }
.link { font-family: "DejaVu Sans Mono", monospace; font-size: 11pt; margin: 4mm 0;
        word-break: break-all; direction: ltr; unicode-bidi: isolate; }
.partner { margin-top: auto; border-top: 0.4mm solid #111; padding-top: 3mm; width: 100%; }
.partner p { margin: 0 0 1.5mm; }
.partner .first { font-size: 14pt; }
.partner .others { font-size: 11pt; line-height: 1.5; }
.partner span { display: inline-block; unicode-bidi: isolate; }
@media screen { body { background: #eee; } .sheet { background: #fff; padding: 14mm;
                margin: 10mm auto; box-shadow: 0 0 4mm #999; } }
"""


def _in_each_language(campaign: CampaignSpec, msgid: str) -> list[tuple[str, str]]:
    """(language, text) for each campaign language whose catalog translates `msgid`.

    Without a translation gettext gives the English back: that is not labelled as Arabic, it
    is left out (the English line stands for it once). Never empty: English at least.
    """
    out: list[tuple[str, str]] = []
    english = False
    for lang in campaign.languages:
        text = tr(lang).gettext(msgid)
        if base_language(lang) == "en":
            if not english:
                out.append((lang, text))
            english = True
        elif text != msgid:
            out.append((lang, text))
    if not out:
        out.append(("en", msgid))
    return out


def N_(message: str) -> str:
    """Mark a message for extraction (make catalogs); it is translated where it is used."""
    return message


SCAN = N_("Scan the code with your phone's camera to answer in Telegram.")
SHARED_BY = N_("Shared with you by")


def poster_html(campaign: CampaignSpec, partner: str, link: str) -> str:
    """A printable A4 poster: the title, how to answer and who shared it, in every campaign
    language that has them; the QR code and the link."""
    first = campaign.languages[0]
    titles = [f'<h1 lang="{_e(lang)}" dir="{_dir(lang)}">{_e(campaign.title[lang])}</h1>'
              for lang in campaign.languages if campaign.title.get(lang)]
    hows = [f'<p class="how" lang="{_e(lang)}" dir="{_dir(lang)}">{_e(text)}</p>'
            for lang, text in _in_each_language(campaign, SCAN)]
    # "Shared with you by" in each language: the first on its own line, the others after it
    # on one or two lines, so that six languages still leave the page one page. <bdi> keeps
    # a Latin name whole inside Arabic.
    shared = [f'<span lang="{_e(lang)}" dir="{_dir(lang)}">{_e(text)} <bdi>{_e(partner)}</bdi></span>'
              for lang, text in _in_each_language(campaign, SHARED_BY)]
    footer = f'<p class="first">{shared[0]}</p>'
    if len(shared) > 1:
        footer += f'\n<p class="others">{" · ".join(shared[1:])}</p>'

    return f"""<!DOCTYPE html>
<html lang="{_e(first)}" dir="{_dir(first)}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_e(campaign.title.get(first, campaign.id))} – {_e(partner)}</title>
<style>{POSTER_CSS}</style>
</head>
<body>
<main class="sheet">
<section class="titles">
{chr(10).join(titles)}
</section>
<div class="qr" role="img" aria-label="{_e(link)}">{_qr_inline(link)}</div>
{chr(10).join(hows)}
<p class="link">{_e(link)}</p>
<footer class="partner">
{footer}
</footer>
</main>
</body>
</html>
"""


@dataclass(frozen=True)
class InviteFiles:
    png: Path
    svg: Path
    poster: Path


def write_invite_files(directory: Path, campaign: CampaignSpec, code: str, partner: str,
                       link: str) -> InviteFiles:
    """Write `<campaign>-<code>.png`, `.svg` and `-poster.html` into `directory`."""
    directory.mkdir(parents=True, exist_ok=True)
    stem = f"{campaign.id}-{code}"
    files = InviteFiles(directory / f"{stem}.png", directory / f"{stem}.svg",
                        directory / f"{stem}-poster.html")
    files.png.write_bytes(qr_png(link))
    files.svg.write_text(qr_svg(link), encoding="utf-8")
    files.poster.write_text(poster_html(campaign, partner, link), encoding="utf-8")
    return files


async def campaign_spec(session: AsyncSession, campaign_id: str) -> tuple[Campaign, CampaignSpec] | None:
    row = await session.get(Campaign, campaign_id)
    if row is None:
        return None
    return row, CampaignSpec.model_validate(row.definition)


def protect_column(values: Sequence[int], k: int, keys: Sequence[int] | None = None) -> tuple[str, list[str]]:
    """People counts per invite (the campaign's own link included) and their total, as an officer
    may see them: below `k` a count shows as "<k" and, where the total would give a hidden one
    away, more are hidden (`analysis.disclosure`, as the report and the dry runs do). Zeros are
    shown: they identify nobody. `keys`: each row's sum of record keys (`record_key_sums`); shown
    counts are perturbed with them (cell key method). Returns the total and the rows, as text.
    """
    from analysis.disclosure import Problem, protect

    keys = list(keys) if keys is not None else [None] * len(values)  # type: ignore[list-item]
    p = Problem()
    total = p.count("total", sum(values), tier=1, zero_shown=True,
                    key=None if None in keys else sum(keys))  # type: ignore[arg-type]
    rows = [p.count(i, v, zero_shown=True, key=key) for i, (v, key) in enumerate(zip(values, keys, strict=True))]
    if rows:
        p.equal({**dict.fromkeys(rows, 1), total: -1})
    guard = protect(p, k)
    return guard.text(total), [guard.text(v) for v in rows]
