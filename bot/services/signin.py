"""One-time sign-in links to the officers' console: made by /admin or the CLI, redeemed once.

A link carries a random token (32 bytes); only its SHA-256 is stored, so a copy of the
database signs nobody in. A link works once, for ten minutes (a partner's for three days:
it is handed over by hand); who it signs in is the officer's audit pseudonym, never a
Telegram id.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import WebSignIn, utcnow
from bot.services.participants import Keys

OFFICER_LINK_LIFETIME = timedelta(minutes=10)
PARTNER_LINK_LIFETIME = timedelta(days=3)
ROLES = ("admin", "analyst", "partner")


class NotAnOfficer(ValueError):
    """The Telegram id is neither in COASSESS_ADMIN_IDS nor in COASSESS_ANALYST_IDS."""


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def officer_role(telegram_id: int, admin_ids: frozenset[int], analyst_ids: frozenset[int]) -> str:
    """admin or analyst, from the settings (an id in both lists is an admin)."""
    if telegram_id in admin_ids:
        return "admin"
    if telegram_id in analyst_ids:
        return "analyst"
    raise NotAnOfficer(
        "this Telegram id is not an officer: add it to COASSESS_ADMIN_IDS (everything) or "
        "COASSESS_ANALYST_IDS (results, reports, exports and the audit log), then try again.")


async def make_link(session: AsyncSession, base_url: str, *, role: str, actor: str,
                    invite_id: int | None = None, lifetime: timedelta | None = None) -> str:
    """Store a new one-time token (flushed, not committed) and return the sign-in address."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    token = secrets.token_urlsafe(32)
    lifetime = lifetime or (PARTNER_LINK_LIFETIME if role == "partner" else OFFICER_LINK_LIFETIME)
    session.add(WebSignIn(token_hash=token_hash(token), role=role, actor=actor, invite_id=invite_id,
                          expires_at=utcnow() + lifetime))
    await session.flush()
    return f"{base_url.rstrip('/')}/signin/{token}"


async def officer_link(session: AsyncSession, keys: Keys, base_url: str, telegram_id: int,
                       admin_ids: frozenset[int], analyst_ids: frozenset[int]) -> str:
    """A sign-in link for an admin or analyst, known by their Telegram id."""
    role = officer_role(telegram_id, admin_ids, analyst_ids)
    return await make_link(session, base_url, role=role, actor=keys.admin(telegram_id))


@dataclass(frozen=True)
class SignedIn:
    role: str
    actor: str
    invite_id: int | None


async def redeem(session: AsyncSession, token: str) -> SignedIn | None:
    """Use a token once: who it signs in, or None when it is unknown, used or expired.

    One UPDATE both checks and spends the token, so two clicks on the same link (two tabs,
    two servers) can never both sign in.
    """
    if not token or len(token) > 200:
        return None
    now = utcnow()
    row = (await session.execute(
        update(WebSignIn)
        .where(WebSignIn.token_hash == token_hash(token), WebSignIn.used_at.is_(None),
               WebSignIn.expires_at > now)
        .values(used_at=now)
        .returning(WebSignIn.role, WebSignIn.actor, WebSignIn.invite_id))).first()
    await session.commit()
    return SignedIn(*row) if row else None
