"""Participants: recognising someone by keyed pseudonym, reaching them, stopping and erasing."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.models import Contact, DialogState, Participant
from bot.pseudonym import ContactCipher, admin_pseudonym, pseudonym


@dataclass(frozen=True)
class Keys:
    """The two secrets: one turns a Telegram id into a pseudonym, one locks the contact table."""

    pseudonym_key: bytes
    contact_key: bytes

    def pseudonym(self, telegram_user_id: int) -> str:
        return pseudonym(self.pseudonym_key, telegram_user_id)

    def admin(self, telegram_user_id: int) -> str:
        return admin_pseudonym(self.pseudonym_key, telegram_user_id)

    @property
    def cipher(self) -> ContactCipher:
        return _cipher(self.contact_key)


_ciphers: dict[bytes, ContactCipher] = {}


def _cipher(key: bytes) -> ContactCipher:
    if key not in _ciphers:
        _ciphers[key] = ContactCipher(key)
    return _ciphers[key]


async def find(session: AsyncSession, keys: Keys, user_id: int) -> Participant | None:
    return await session.scalar(select(Participant).where(Participant.pseudonym == keys.pseudonym(user_id)))


async def ensure(session: AsyncSession, keys: Keys, user_id: int, chat_id: int,
                 language: str | None = None) -> Participant:
    """The participant for a Telegram user, created with an encrypted contact on first contact."""
    p = await find(session, keys, user_id)
    if p is None:
        p = Participant(pseudonym=keys.pseudonym(user_id), language=language)
        session.add(p)
        await session.flush()
    if await session.get(Contact, p.id) is None:
        session.add(Contact(participant_id=p.id, chat_ciphertext=keys.cipher.encrypt_chat_id(chat_id)))
        await session.flush()
    return p


async def chat_id(session: AsyncSession, keys: Keys, participant_id: int) -> int | None:
    contact = await session.get(Contact, participant_id)
    return keys.cipher.decrypt_chat_id(contact.chat_ciphertext) if contact else None


async def stop(session: AsyncSession, participant: Participant) -> None:
    """No more invitations or outcome messages; answers are kept."""
    participant.stopped = True
    participant.allow_invitations = False


async def forget(session: AsyncSession, participant_id: int, state_key_prefix: str | None = None) -> None:
    """Erase everything about a participant: responses, answers, groups, deliveries, contact.

    Rows go by ON DELETE CASCADE from the participant row; the dialog state stored under the
    participant's hashed key goes too.
    """
    await session.execute(delete(Participant).where(Participant.id == participant_id))
    if state_key_prefix:
        await session.execute(delete(DialogState).where(DialogState.key.startswith(state_key_prefix)))
