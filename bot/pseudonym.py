"""Keyed pseudonyms for participants and encryption of the only table that can reach them."""

from __future__ import annotations

import base64
import hashlib
import hmac

from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


def pseudonym(key: bytes, telegram_user_id: int) -> str:
    """HMAC-SHA256 of the Telegram user id under the pseudonym key, as hex.

    A bare hash would be reversible: Telegram ids are small integers that can be enumerated.
    """
    return hmac.new(key, b"participant:" + str(int(telegram_user_id)).encode(), hashlib.sha256).hexdigest()


def admin_pseudonym(key: bytes, telegram_user_id: int) -> str:
    """A short pseudonym for administrators in the audit log (a different domain than participants)."""
    return "admin:" + hmac.new(key, b"admin:" + str(int(telegram_user_id)).encode(), hashlib.sha256).hexdigest()[:16]


def salted(value: str, salt: bytes) -> str:
    """Re-key a stored pseudonym with a per-export salt, so two exports cannot be joined."""
    return hmac.new(salt, value.encode(), hashlib.sha256).hexdigest()[:20]


class ContactCipher:
    """Encrypts chat ids with a key derived from CONTACT_KEY (Fernet: AES-128-CBC + HMAC)."""

    def __init__(self, contact_key: bytes) -> None:
        derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"coassess-contact",
                       info=b"fernet").derive(contact_key)
        self._fernet = Fernet(base64.urlsafe_b64encode(derived))

    def encrypt_chat_id(self, chat_id: int) -> bytes:
        return self._fernet.encrypt(str(int(chat_id)).encode())

    def decrypt_chat_id(self, token: bytes) -> int:
        try:
            return int(self._fernet.decrypt(bytes(token)))
        except InvalidToken as exc:
            raise ValueError("contact cannot be decrypted: COASSESS_CONTACT_KEY has changed") from exc

    def encrypt_bytes(self, data: bytes) -> bytes:
        return self._fernet.encrypt(data)

    def decrypt_bytes(self, token: bytes) -> bytes:
        return self._fernet.decrypt(bytes(token))
