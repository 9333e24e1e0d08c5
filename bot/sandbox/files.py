"""Files held by the sandbox: uploads, stand-in media, ``file_id``s and download paths."""

from __future__ import annotations

import mimetypes
import secrets
import struct
import zlib
from dataclasses import dataclass, field

# Prefixes of real file_ids by kind, so an id looks like what the bot gets from Telegram.
_ID_PREFIX = {"photo": "AgACAgIAAxk", "document": "BQACAgIAAxk", "voice": "AwACAgIAAxk",
              "sticker": "CAACAgIAAxk"}
# TDLib's directories by kind, which start getFile's file_path.
_DIRECTORY = {"photo": "photos", "document": "documents", "voice": "voice",
              "sticker": "stickers"}
_EXTENSION = {"photo": ".jpg", "voice": ".oga", "sticker": ".webp"}
#: Largest file getFile serves to a bot (Telegram's 20 MB).
MAX_DOWNLOAD_BYTES = 20 * 1024 * 1024


@dataclass
class StoredFile:
    """One file as Telegram knows it.

    Attributes:
        file_id: The id the bot uses to send it again or to call getFile.
        file_unique_id: Stable id of the content.
        kind: ``photo``, ``document``, ``voice`` or ``sticker``.
        data: The bytes (for a photo size: the uploaded image, not a resized copy).
        file_path: Set by getFile; the download path under ``/file/bot<token>/``.
    """

    file_id: str
    file_unique_id: str
    kind: str
    data: bytes
    mime_type: str | None = None
    file_name: str | None = None
    width: int | None = None
    height: int | None = None
    duration: int | None = None
    source_url: str | None = None
    file_path: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def file_size(self) -> int:
        """Size in bytes."""
        return len(self.data)


class FileStore:
    """All files of the sandbox world, by ``file_id`` and by download path."""

    def __init__(self) -> None:
        self._by_id: dict[str, StoredFile] = {}
        self._by_path: dict[str, StoredFile] = {}
        self._paths = 0

    def add(self, kind: str, data: bytes, **fields: object) -> StoredFile:
        """Store new content and give it fresh ids."""
        stored = StoredFile(
            file_id=_ID_PREFIX.get(kind, "BQACAgIAAxk") + secrets.token_urlsafe(36),
            file_unique_id="AQAD" + secrets.token_urlsafe(9),
            kind=kind,
            data=data,
            **fields,  # type: ignore[arg-type]
        )
        self._by_id[stored.file_id] = stored
        return stored

    def get(self, file_id: str) -> StoredFile | None:
        """The file with this id, or None."""
        return self._by_id.get(file_id)

    def by_path(self, path: str) -> StoredFile | None:
        """The file served at this download path, or None."""
        return self._by_path.get(path)

    def assign_path(self, stored: StoredFile) -> str:
        """Give ``stored`` a download path (once), as getFile does."""
        if stored.file_path is None:
            extension = _EXTENSION.get(stored.kind, "")
            if stored.kind == "document":
                if stored.file_name and "." in stored.file_name:
                    extension = "." + stored.file_name.rsplit(".", 1)[1]
                else:
                    extension = mimetypes.guess_extension(stored.mime_type or "") or ""
            directory = _DIRECTORY.get(stored.kind, "documents")
            stored.file_path = f"{directory}/file_{self._paths}{extension}"
            self._paths += 1
            self._by_path[stored.file_path] = stored
        return stored.file_path


def image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height from a PNG, GIF, JPEG or WebP header, or None if it is no image."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return width, height
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return width, height
    if data.startswith(b"RIFF") and data[8:12] == b"WEBP" and len(data) >= 30:
        if data[12:16] == b"VP8X":
            width = int.from_bytes(data[24:27], "little") + 1
            height = int.from_bytes(data[27:30], "little") + 1
            return width, height
        if data[12:16] == b"VP8 ":
            width, height = struct.unpack("<HH", data[26:30])
            return width & 0x3FFF, height & 0x3FFF
        return 512, 512
    if data.startswith(b"\xff\xd8"):
        return _jpeg_size(data)
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        length = struct.unpack(">H", data[i + 2:i + 4])[0]
        # Start-of-frame markers carry the dimensions.
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE,
                      0xCF):
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def photo_sizes(width: int, height: int) -> list[tuple[int, int]]:
    """The sizes Telegram lists for a photo: thumbnails up to the original (at most 2560)."""
    scale = min(1.0, 2560 / max(width, height, 1))
    width, height = max(1, round(width * scale)), max(1, round(height * scale))
    sizes = []
    for side in (90, 320, 800, 1280):
        if max(width, height) > side:
            ratio = side / max(width, height)
            sizes.append((max(1, round(width * ratio)), max(1, round(height * ratio))))
    sizes.append((width, height))
    return sizes


def make_png(width: int, height: int) -> bytes:
    """A grey PNG of the given size: a real image for a simulated citizen's photo."""
    row = b"\x00" + b"\x80\x80\x80" * width
    raw = zlib.compress(row * height, 9)

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(
            ">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(
        b"IEND", b"")


def stand_in_voice(duration: int) -> bytes:
    """Bytes that start like an Ogg/Opus voice note, about 2 KB per second."""
    return b"OggS\x00\x02" + b"\x00" * (2000 * max(duration, 1))


def stand_in_sticker() -> bytes:
    """Bytes that start like a 512x512 WebP sticker."""
    body = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4 + (511).to_bytes(3, "little") * 2
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body
