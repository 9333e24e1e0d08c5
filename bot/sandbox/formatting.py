"""Telegram text formatting: HTML, MarkdownV2 and Markdown parsing, entity checks and cleaning.

The parsers follow TDLib's (``td/telegram/MessageEntity.cpp``): they walk UTF-8 bytes so that
"byte offset" in an error means what it means on Telegram, and produce entities with UTF-16
offsets, as the Bot API does.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

MAX_TEXT_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024
#: Raw ``text`` longer than this is refused while the request is read, before parsing.
MAX_RAW_TEXT_BYTES = 32 * 1024

PARSE_MODES = {"html": "HTML", "markdownv2": "MarkdownV2", "markdown": "Markdown"}

# Types a bot may give explicitly. Those Telegram finds by itself are accepted and ignored.
_EXPLICIT_TYPES = frozenset(
    {
        "bold",
        "italic",
        "underline",
        "strikethrough",
        "spoiler",
        "blockquote",
        "expandable_blockquote",
        "code",
        "pre",
        "text_link",
        "text_mention",
        "custom_emoji",
    }
)
_FOUND_BY_TELEGRAM = frozenset(
    {"mention", "hashtag", "cashtag", "bot_command", "url", "email", "phone_number",
     "bank_card_number"}
)
# Characters that show nothing: a text made only of these is "empty" for Telegram.
_INVISIBLE = frozenset("\u00ad\u115f\u1160\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2800"
                       "\u3164\ufeff\uffa0")


class FormatError(ValueError):
    """Telegram refused a text or entity; ``str(error)`` follows ``Bad Request: ``."""


def utf16_len(text: str) -> int:
    """Length of ``text`` in UTF-16 code units, the unit of entity offsets."""
    return len(text.encode("utf-16-le")) // 2


@dataclass
class FormattedText:
    """Text as Telegram stores it, with entities in UTF-16 offsets."""

    text: str
    entities: list[dict[str, Any]] = field(default_factory=list)

    def is_blank(self) -> bool:
        """True when nothing would show: Telegram's "text must be non-empty"."""
        return all(ch.isspace() or ch in _INVISIBLE for ch in self.text)

    def length(self) -> int:
        """Length as Telegram's limits count it: Unicode code points."""
        return len(self.text)


def normalize_parse_mode(parse_mode: str | None) -> str | None:
    """Return ``HTML``, ``MarkdownV2``, ``Markdown`` or None; refuse unknown modes."""
    if parse_mode is None or parse_mode == "" or parse_mode.lower() == "none":
        return None
    mode = PARSE_MODES.get(parse_mode.lower())
    if mode is None:
        raise FormatError("unsupported parse_mode")
    return mode


def format_text(
    raw: str,
    parse_mode: str | None,
    entities: Any = None,
    *,
    strict_ampersand: bool = True,
    find_user: Callable[[int], dict[str, Any] | None] | None = None,
) -> FormattedText:
    """Turn a bot's ``text``/``caption`` into what Telegram would store.

    Args:
        raw: The text as sent.
        parse_mode: ``HTML``, ``MarkdownV2``, ``Markdown`` (any case) or None.
        entities: Explicit entities (list or JSON string); ignored when a parse mode is set.
        strict_ampersand: Refuse a bare ``&`` in HTML, as the Bot API docs require. TDLib itself
            lets one through as a literal, so False gives Telegram's lenient behaviour.
        find_user: Resolves a ``text_mention`` user id to a User dict (None: unknown user).

    Returns:
        The cleaned, trimmed text and its entities, automatic ones (links, commands) included.

    Raises:
        FormatError: With Telegram's description, e.g. ``can't parse entities: ...``.
    """
    mode = normalize_parse_mode(parse_mode)
    raw = raw.replace("\r", "")
    if mode == "HTML":
        text, found = _parse_html(raw, strict_ampersand=strict_ampersand)
    elif mode == "MarkdownV2":
        text, found = _parse_markdown_v2(raw)
    elif mode == "Markdown":
        text, found = _parse_markdown(raw)
    else:
        text, found = raw, parse_entities_param(entities, raw, find_user=find_user)
    text = "".join(" " if ord(ch) < 32 and ch not in "\n\t" else ch for ch in text)
    text, found = _trim(text, found)
    found = _add_automatic_entities(text, found)
    found.sort(key=lambda e: (e["offset"], -e["length"]))
    return FormattedText(text, found)


# --- explicit entities -------------------------------------------------------------------


def parse_entities_param(
    value: Any,
    text: str,
    *,
    find_user: Callable[[int], dict[str, Any] | None] | None = None,
) -> list[dict[str, Any]]:
    """Read and check an ``entities`` parameter as the Bot API does."""
    if value is None or value == "":
        return []
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            raise FormatError("can't parse entities JSON object") from None
    if not isinstance(value, list):
        raise FormatError("can't parse entities JSON object")
    total = utf16_len(text)
    result: list[dict[str, Any]] = []
    for item in value:
        entity = _read_entity(item, find_user)
        if entity is None:
            continue
        offset, length = entity["offset"], entity["length"]
        if offset < 0:
            raise FormatError(f"receive an entity with incorrect offset {offset}")
        if length < 0:
            raise FormatError(f"receive an entity with incorrect length {length}")
        if offset > total:
            raise FormatError(f"entity begins after the end of the text at UTF-16 offset {offset}")
        if offset + length > total:
            raise FormatError(
                f"entity beginning at UTF-16 offset {offset} ends after the end of the text "
                f"at UTF-16 offset {offset + length}"
            )
        if length and entity["type"] not in _FOUND_BY_TELEGRAM:
            result.append(entity)
    return result


def _read_entity(
    item: Any, find_user: Callable[[int], dict[str, Any] | None] | None
) -> dict[str, Any] | None:
    prefix = "can't parse MessageEntity: "
    if not isinstance(item, dict):
        raise FormatError(prefix + "expected an Object")
    for name in ("type", "offset", "length"):
        if name not in item:
            raise FormatError(prefix + f'Can\'t find field "{name}"')
    kind = item["type"]
    if not isinstance(kind, str):
        raise FormatError(prefix + 'Field "type" must be of type String')
    for name in ("offset", "length"):
        if not isinstance(item[name], int) or isinstance(item[name], bool):
            raise FormatError(prefix + f'Field "{name}" must be of type Number')
    if kind not in _EXPLICIT_TYPES and kind not in _FOUND_BY_TELEGRAM:
        raise FormatError(prefix + "Unsupported type specified")
    entity: dict[str, Any] = {"type": kind, "offset": item["offset"], "length": item["length"]}
    if kind == "text_link":
        if "url" not in item:
            raise FormatError(prefix + 'Can\'t find field "url"')
        url = str(item["url"])
        reason = check_url(url)
        if reason:
            raise FormatError(f"entity URL '{url}' is invalid: {reason}")
        entity["url"] = normalize_url(url)
    elif kind == "text_mention":
        user = item.get("user")
        if not isinstance(user, dict):
            raise FormatError(prefix + 'Can\'t find field "user"')
        known = find_user(int(user.get("id", 0))) if find_user else None
        if known is None:
            raise FormatError("user not found")
        entity["user"] = known
    elif kind == "custom_emoji":
        if "custom_emoji_id" not in item:
            raise FormatError(prefix + 'Can\'t find field "custom_emoji_id"')
        emoji_id = str(item["custom_emoji_id"])
        if not emoji_id.isdigit() or not 0 < int(emoji_id) < 2**63:
            raise FormatError(prefix + 'Field "custom_emoji_id" must be a valid Number')
        entity["custom_emoji_id"] = emoji_id
    elif kind == "pre" and isinstance(item.get("language"), str) and item["language"]:
        entity["language"] = item["language"]
    return entity


# --- URLs --------------------------------------------------------------------------------

_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://")


def check_url(url: str) -> str | None:
    """Return why Telegram would refuse ``url`` (TDLib's wording), or None if it is fine."""
    if not url:
        return "URL host is empty"
    match = _SCHEME.match(url)
    scheme = match.group(1).lower() if match else "http"
    rest = url[match.end():] if match else url
    if scheme in ("tg", "ton", "tonsite"):
        return None if rest else "URL host is empty"
    if scheme not in ("http", "https"):
        return "Unsupported URL protocol"
    host = re.split(r"[/?#]", rest, maxsplit=1)[0].rsplit("@", 1)[-1]
    host = host[1:host.index("]")] if host.startswith("[") and "]" in host else host.split(":")[0]
    if not host:
        return "URL host is empty"
    if re.fullmatch(r"[0-9.]+", host) or ":" in host:
        return None
    labels = host.rstrip(".").split(".")
    if len(labels) < 2 or not all(labels) or not re.fullmatch(r"[^\W\d_]{2,}|xn--[\w-]+",
                                                                labels[-1]):
        return "Wrong HTTP URL"
    if any(not re.fullmatch(r"[\w-]+", label) for label in labels):
        return "Wrong HTTP URL"
    return None


def normalize_url(url: str) -> str:
    """Rewrite a URL the way Telegram stores it (``example.com`` → ``http://example.com/``)."""
    match = _SCHEME.match(url)
    if not match:
        url = "http://" + url
        match = _SCHEME.match(url)
    assert match is not None
    if match.group(1).lower() in ("http", "https"):
        rest = url[match.end():]
        if not re.search(r"[/?#]", rest):
            url += "/"
    return url


# --- HTML ---------------------------------------------------------------------------------

_HTML_TAGS = frozenset(
    {"a", "b", "strong", "i", "em", "s", "strike", "del", "u", "ins", "tg-spoiler", "tg-emoji",
     "span", "pre", "code", "blockquote"}
)
_HTML_TYPES = {
    "b": "bold", "strong": "bold", "i": "italic", "em": "italic", "s": "strikethrough",
    "strike": "strikethrough", "del": "strikethrough", "u": "underline", "ins": "underline",
    "tg-spoiler": "spoiler", "span": "spoiler", "code": "code", "pre": "pre",
}
_SPACE_BYTES = frozenset(b" \t\n\r\v\f")
_NAMED_ENTITIES = {b"lt": 0x3C, b"gt": 0x3E, b"amp": 0x26, b"quot": 0x22}


class _Output:
    """Collects parsed text as UTF-8 while counting UTF-16 units for entity offsets."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.u16 = 0

    def add_byte(self, byte: int) -> None:
        self.data.append(byte)
        if byte & 0xC0 != 0x80:  # a lead byte starts a new character
            self.u16 += 2 if byte >= 0xF0 else 1

    def add_char(self, code_point: int) -> None:
        for byte in chr(code_point).encode("utf-8"):
            self.add_byte(byte)

    def text(self) -> str:
        return self.data.decode("utf-8")


def _decode_html_entity(data: bytes, pos: int, *, strict: bool) -> tuple[int, int] | None:
    """Decode ``&...;`` at ``data[pos]``: (code point, next position) or None if it is not one."""
    n = len(data)
    end = pos + 1
    value = 0
    if end < n and data[end] == ord("#"):
        end += 1
        hexadecimal = end < n and data[end] == ord("x")
        end += hexadecimal
        start = end
        digits = "0123456789abcdefABCDEF" if hexadecimal else "0123456789"
        while end < n and chr(data[end]) in digits:
            value = value * (16 if hexadecimal else 10) + int(chr(data[end]), 16)
            end += 1
            if value > 0x10FFFF:
                return None
        if end == start or value == 0 or 0xD800 <= value <= 0xDFFF:
            return None
    else:
        start = end
        while end < n and chr(data[end]).isascii() and chr(data[end]).isalpha():
            end += 1
        value = _NAMED_ENTITIES.get(bytes(data[start:end]), 0)
        if not value:
            return None
    if end < n and data[end] == ord(";"):
        end += 1
    elif strict:
        return None
    return value, end


def _parse_html(raw: str, *, strict_ampersand: bool) -> tuple[str, list[dict[str, Any]]]:
    data = raw.encode("utf-8")
    n = len(data)
    out = _Output()
    # Each open tag: [name, argument, UTF-16 start, byte offset of "<"].
    stack: list[list[Any]] = []
    entities: list[dict[str, Any]] = []

    def at(k: int) -> int:
        return data[k] if k < n else 0

    i = 0
    while i < n:
        c = data[i]
        if c == ord("&"):
            decoded = _decode_html_entity(data, i, strict=strict_ampersand)
            if decoded:
                out.add_char(decoded[0])
                i = decoded[1]
                continue
            if strict_ampersand:
                raise FormatError(
                    f'can\'t parse entities: Character "&" at byte offset {i} is not an HTML '
                    'entity; escape it as "&amp;"'
                )
        if c != ord("<"):
            out.add_byte(c)
            i += 1
            continue
        begin = i
        i += 1
        if at(i) != ord("/"):
            name_start = i
            while i < n and at(i) not in _SPACE_BYTES and at(i) != ord(">"):
                i += 1
            if i >= n:
                raise FormatError(
                    f"can't parse entities: Unclosed start tag at byte offset {begin}")
            tag = data[name_start:i].decode("utf-8", "replace").lower()
            if tag not in _HTML_TAGS:
                raise FormatError(
                    f'can\'t parse entities: Unsupported start tag "{tag}" at byte offset {begin}'
                )
            argument = _read_html_attributes(data, i, tag, begin)
            i, argument = argument
            if tag == "span" and argument != "spoiler":
                raise FormatError(
                    f'can\'t parse entities: Tag "span" must have class "tg-spoiler" at byte '
                    f"offset {begin}"
                )
            if tag == "tg-emoji" and not (argument.isdigit() and 0 < int(argument) < 2**63):
                raise FormatError(
                    "can't parse entities: Invalid custom emoji identifier specified"
                )
            stack.append([tag, argument, out.u16, begin])
            continue
        if not stack:
            raise FormatError(f"can't parse entities: Unexpected end tag at byte offset {begin}")
        i += 1
        name_start = i
        while i < n and at(i) not in _SPACE_BYTES and at(i) != ord(">"):
            i += 1
        end_tag = data[name_start:i].decode("utf-8", "replace")
        while i < n and at(i) in _SPACE_BYTES:
            i += 1
        if at(i) != ord(">"):
            raise FormatError(f"can't parse entities: Unclosed end tag at byte offset {begin}")
        i += 1
        tag, argument, start, _ = stack.pop()
        if end_tag and end_tag != tag:
            raise FormatError(
                f'can\'t parse entities: Unmatched end tag at byte offset {begin}, expected '
                f'"</{tag}>", found "</{end_tag}>"'
            )
        _close_html_entity(entities, tag, argument, start, out)
    if stack:
        raise FormatError(
            "can't parse entities: Can't find end tag corresponding to start tag "
            f'"{stack[-1][0]}"'
        )
    for entity in entities:
        entity.pop("_language", None)  # a language counts only on <pre><code>
    return out.text(), entities


def _read_html_attributes(data: bytes, i: int, tag: str, begin: int) -> tuple[int, str]:
    """Read a start tag's attributes from ``data[i]``; return (index after ">", argument)."""
    n = len(data)

    def at(k: int) -> int:
        return data[k] if k < n else 0

    argument = ""
    while at(i) != ord(">"):
        while i < n and at(i) in _SPACE_BYTES:
            i += 1
        if at(i) == ord(">"):
            break
        if i >= n:
            raise FormatError(
                f"can't parse entities: Unclosed start tag at byte offset {begin}")
        name_start = i
        while i < n and at(i) not in _SPACE_BYTES and at(i) not in (ord("="), ord(">")):
            i += 1
        name = data[name_start:i].decode("utf-8", "replace").lower()
        if not name:
            raise FormatError(
                f'can\'t parse entities: Empty attribute name in the tag "{tag}" at byte offset '
                f"{begin}"
            )
        while i < n and at(i) in _SPACE_BYTES:
            i += 1
        if at(i) != ord("="):
            if tag == "blockquote" and name == "expandable":
                argument = "expandable"
                continue
            if i >= n:
                raise FormatError(
                    f"can't parse entities: Unclosed start tag at byte offset {begin}")
            raise FormatError(
                "can't parse entities: Expected equal sign in declaration of an attribute of the "
                f'tag "{tag}" at byte offset {begin}'
            )
        i += 1
        while i < n and at(i) in _SPACE_BYTES:
            i += 1
        if i >= n:
            raise FormatError(
                f'can\'t parse entities: Unclosed start tag "{tag}" at byte offset {begin}'
            )
        value = _Output()
        if at(i) not in (ord("'"), ord('"')):
            token_start = i
            while chr(at(i)).isalnum() and at(i) < 128 or at(i) in (ord("."), ord("-")):
                i += 1
            for byte in data[token_start:i].lower():
                value.add_byte(byte)
            if at(i) not in _SPACE_BYTES and at(i) != ord(">"):
                raise FormatError(
                    f"can't parse entities: Unexpected end of name token at byte offset "
                    f"{token_start}"
                )
        else:
            quote = at(i)
            i += 1
            while i < n and at(i) != quote:
                if at(i) == ord("&"):
                    decoded = _decode_html_entity(data, i, strict=False)
                    if decoded:
                        value.add_char(decoded[0])
                        i = decoded[1]
                        continue
                value.add_byte(at(i))
                i += 1
            if at(i) == quote:
                i += 1
        if i >= n:
            raise FormatError(f"can't parse entities: Unclosed start tag at byte offset {begin}")
        text = value.text()
        if tag == "a" and name == "href":
            argument = text
        elif tag == "code" and name == "class" and text.startswith("language-"):
            argument = text[len("language-"):]
        elif tag == "span" and name == "class" and text.startswith("tg-"):
            argument = text[3:]
        elif tag == "tg-emoji" and name == "emoji-id":
            argument = text
        elif tag == "blockquote" and name == "expandable":
            argument = "expandable"
    return i + 1, argument


def _close_html_entity(
    entities: list[dict[str, Any]], tag: str, argument: str, start: int, out: _Output
) -> None:
    length = out.u16 - start
    if length <= 0:
        return
    if tag == "a":
        url = argument or _utf16_slice(out.text(), start, out.u16)
        if check_url(url) is None:
            entities.append({"type": "text_link", "offset": start, "length": length,
                             "url": normalize_url(url)})
        return  # TDLib drops a link it cannot read instead of refusing the text
    if tag == "tg-emoji":
        entities.append({"type": "custom_emoji", "offset": start, "length": length,
                         "custom_emoji_id": argument})
        return
    if tag == "blockquote":
        kind = "expandable_blockquote" if argument else "blockquote"
        entities.append({"type": kind, "offset": start, "length": length})
        return
    entity: dict[str, Any] = {"type": _HTML_TYPES[tag], "offset": start, "length": length}
    if tag == "code" and argument:
        entity["_language"] = argument
    if tag == "pre":
        # <pre><code class="language-x"> is one pre entity with a language.
        for inner in list(entities):
            if (inner["type"] == "code" and inner["offset"] == start
                    and inner["length"] == length):
                entities.remove(inner)
                if inner.get("_language"):
                    entity["language"] = inner["_language"]
    entities.append(entity)


def _utf16_slice(text: str, start: int, end: int) -> str:
    return text.encode("utf-16-le")[start * 2:end * 2].decode("utf-16-le")


# --- MarkdownV2 ----------------------------------------------------------------------------

_MDV2_RESERVED = frozenset(b"_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {
    "bold": "Bold", "italic": "Italic", "underline": "Underline",
    "strikethrough": "Strikethrough", "spoiler": "Spoiler", "code": "Code", "pre": "Pre",
    "pre_code": "PreCode", "text_link": "TextUrl", "custom_emoji": "CustomEmoji",
}


def _reserved_error(char: int) -> FormatError:
    return FormatError(
        f"can't parse entities: Character '{chr(char)}' is reserved and must be escaped with "
        "the preceding '\\'"
    )


def _parse_markdown_v2(raw: str) -> tuple[str, list[dict[str, Any]]]:
    data = raw.encode("utf-8")
    n = len(data)
    out = _Output()
    entities: list[dict[str, Any]] = []
    # Each open entity: [kind, argument, UTF-16 start, byte offset, output byte length].
    stack: list[list[Any]] = []
    quote: list[Any] | None = None  # [UTF-16 start, expandable]

    def at(k: int) -> int:
        return data[k] if k < n else 0

    def close_quote(end: int, expandable: bool) -> None:
        nonlocal quote
        assert quote is not None
        if end > quote[0]:
            kind = "expandable_blockquote" if expandable or quote[1] else "blockquote"
            entities.append({"type": kind, "offset": quote[0], "length": end - quote[0]})
        quote = None

    i = 0
    while i < n:
        c = data[i]
        in_code = bool(stack) and stack[-1][0] in ("code", "pre", "pre_code")
        if not in_code and (i == 0 or data[i - 1] == ord("\n")):
            if c == ord(">"):
                if quote is None:
                    quote = [out.u16, False]
                i += 1
                continue
            if data.startswith(b"**>", i):
                if quote is None:
                    quote = [out.u16, True]
                i += 3
                continue
            if quote is not None:
                close_quote(out.u16 - 1, False)
        if c == ord("\\") and 0 < at(i + 1) <= 126:
            out.add_byte(data[i + 1])
            i += 2
            continue
        if (quote is not None and c == ord("|") and at(i + 1) == ord("|")
                and (i + 2 >= n or data[i + 2] == ord("\n"))
                and not any(e[0] == "spoiler" for e in stack)):
            close_quote(out.u16, True)
            i += 2
            continue
        reserved = frozenset(b"`") if in_code else _MDV2_RESERVED
        if c not in reserved:
            out.add_byte(c)
            i += 1
            continue
        is_end = False
        if stack:
            kind = stack[-1][0]
            is_end = {
                "bold": c == ord("*"),
                "italic": c == ord("_") and at(i + 1) != ord("_"),
                "code": c == ord("`"),
                "pre": c == ord("`") and at(i + 1) == ord("`") and at(i + 2) == ord("`"),
                "pre_code": c == ord("`") and at(i + 1) == ord("`") and at(i + 2) == ord("`"),
                "text_link": c == ord("]"),
                "custom_emoji": c == ord("]"),
                "underline": c == ord("_") and at(i + 1) == ord("_"),
                "strikethrough": c == ord("~"),
                "spoiler": c == ord("|") and at(i + 1) == ord("|"),
            }[kind]
        if not is_end:
            byte_offset = i
            argument = ""
            if c == ord("_"):
                kind = "underline" if at(i + 1) == ord("_") else "italic"
                i += 2 if kind == "underline" else 1
            elif c == ord("*"):
                kind, i = "bold", i + 1
            elif c == ord("~"):
                kind, i = "strikethrough", i + 1
            elif c == ord("|"):
                if at(i + 1) != ord("|"):
                    raise _reserved_error(c)
                kind, i = "spoiler", i + 2
            elif c == ord("["):
                kind, i = "text_link", i + 1
            elif c == ord("`"):
                if at(i + 1) == ord("`") and at(i + 2) == ord("`"):
                    i += 3
                    kind = "pre"
                    language_end = i
                    while language_end < n and at(language_end) not in _SPACE_BYTES \
                            and at(language_end) != ord("`"):
                        language_end += 1
                    if i != language_end and language_end < n and at(language_end) != ord("`"):
                        kind = "pre_code"
                        argument = data[i:language_end].decode("utf-8", "replace")
                        i = language_end
                    if at(i) in (ord("\n"), ord("\r")):
                        pair = at(i + 1) in (ord("\n"), ord("\r")) and at(i) != at(i + 1)
                        i += 2 if pair else 1
                else:
                    kind, i = "code", i + 1
            elif c == ord("!"):
                if at(i + 1) != ord("["):
                    raise _reserved_error(c)
                kind, i = "custom_emoji", i + 2
            else:
                raise _reserved_error(c)
            stack.append([kind, argument, out.u16, byte_offset, len(out.data)])
            continue
        kind, argument, start, _, out_start = stack.pop()
        i += {"underline": 2, "spoiler": 2, "pre": 3, "pre_code": 3}.get(kind, 1)
        if kind in ("text_link", "custom_emoji"):
            if at(i) == ord("("):
                i += 1
                url_start = i
                url = bytearray()
                while i < n and data[i] != ord(")"):
                    if data[i] == ord("\\") and 0 < at(i + 1) <= 126:
                        url.append(data[i + 1])
                        i += 2
                        continue
                    url.append(data[i])
                    i += 1
                if at(i) != ord(")"):
                    raise FormatError(
                        f"can't parse entities: Can't find end of a URL at byte offset {url_start}"
                    )
                i += 1
                argument = url.decode("utf-8", "replace")
            else:
                argument = out.data[out_start:].decode("utf-8", "replace")
        if out.u16 == start:
            continue
        entity: dict[str, Any] = {"type": kind, "offset": start, "length": out.u16 - start}
        if kind == "pre_code":
            entity = {"type": "pre", "offset": start, "length": out.u16 - start,
                      "language": argument}
        elif kind == "text_link":
            if check_url(argument) is not None:
                continue
            entity["url"] = normalize_url(argument)
        elif kind == "custom_emoji":
            match = re.fullmatch(r"tg://emoji\?id=(\d+)", argument)
            if not match:
                raise FormatError(
                    "can't parse entities: Custom emoji entity must contain a tg://emoji URL"
                )
            entity["custom_emoji_id"] = match.group(1)
        entities.append(entity)
    if stack:
        kind, _, _, byte_offset, _ = stack[-1]
        raise FormatError(
            f"can't parse entities: Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
            f"{byte_offset}"
        )
    if quote is not None:
        close_quote(out.u16, False)
    return out.text(), entities


# --- Markdown (legacy) ---------------------------------------------------------------------


def _parse_markdown(raw: str) -> tuple[str, list[dict[str, Any]]]:
    data = raw.encode("utf-8")
    n = len(data)
    out = _Output()
    entities: list[dict[str, Any]] = []

    def at(k: int) -> int:
        return data[k] if k < n else 0

    i = 0
    while i < n:
        c = data[i]
        if c == ord("\\") and at(i + 1) in b"_*`[":
            out.add_byte(data[i + 1])
            i += 2
            continue
        if c not in b"_*`[":
            out.add_byte(c)
            i += 1
            continue
        begin = i
        end_char = ord("]") if c == ord("[") else c
        i += 1
        is_pre = False
        language = ""
        if c == ord("`") and at(i) == ord("`") and at(i + 1) == ord("`"):
            is_pre = True
            i += 2
            language_end = i
            while language_end < n and at(language_end) not in _SPACE_BYTES \
                    and at(language_end) != ord("`"):
                language_end += 1
            if i != language_end and language_end < n and at(language_end) != ord("`"):
                language = data[i:language_end].decode("utf-8", "replace")
                i = language_end
            if at(i) == ord("\n"):
                i += 1
        start = out.u16
        start_bytes = len(out.data)
        while i < n and (at(i) != end_char
                         or (is_pre and not (at(i + 1) == ord("`") and at(i + 2) == ord("`")))):
            out.add_byte(data[i])
            i += 1
        if i >= n:
            raise FormatError(
                f"can't parse entities: Can't find end of the entity starting at byte offset "
                f"{begin}"
            )
        i += 3 if is_pre else 1
        length = out.u16 - start
        if c == ord("["):
            url = ""
            if at(i) == ord("("):
                close = data.find(b")", i)
                if close < 0:
                    raise FormatError(
                        f"can't parse entities: Can't find end of the entity starting at byte "
                        f"offset {begin}"
                    )
                url = data[i + 1:close].decode("utf-8", "replace")
                i = close + 1
            else:
                url = out.data[start_bytes:].decode("utf-8", "replace")
            if length and check_url(url) is None:
                entities.append({"type": "text_link", "offset": start, "length": length,
                                 "url": normalize_url(url)})
            continue
        if not length:
            continue
        kind = {ord("_"): "italic", ord("*"): "bold", ord("`"): "code"}[c]
        entity: dict[str, Any] = {"type": "pre" if is_pre else kind, "offset": start,
                                  "length": length}
        if language:
            entity["language"] = language
        entities.append(entity)
    return out.text(), entities


# --- cleaning and automatic entities -------------------------------------------------------


def _trim(text: str, entities: list[dict[str, Any]]) -> tuple[str, list[dict[str, Any]]]:
    """Cut spaces and newlines at both ends (at the start only up to the first entity)."""
    kept = text.rstrip(" \n")
    total = utf16_len(kept)
    lead = len(kept) - len(kept.lstrip(" \n"))
    if entities:
        lead = min(lead, min(e["offset"] for e in entities))
    result = []
    for entity in entities:
        end = min(entity["offset"] + entity["length"], total)
        if end <= entity["offset"]:
            continue
        result.append({**entity, "offset": entity["offset"] - lead,
                       "length": end - entity["offset"]})
    return kept[lead:], result


_TLDS = (
    "com|org|net|info|io|me|ru|uk|de|fr|eu|gov|edu|app|dev|ly|co|us|ua|kz|by|uz|tj|kg|am|ge|az|md|"
    "pl|es|it|nl|be|ch|at|se|no|fi|dk|cz|sk|hu|ro|bg|gr|pt|ie|lt|lv|ee|tr|in|cn|jp|kr|br|ar|mx|ca|"
    "au|nz|za|ng|ke|xyz|online|site|shop|tech|ai|tv|cc|biz|pro|int|org|gg|gl|so|to|ws"
)
_AUTOMATIC = [
    ("email", re.compile(r"(?<![\w.+\-])[\w.+\-]+@(?:[A-Za-z0-9\-]+\.)+[A-Za-z]{2,}(?![\w\-])")),
    ("url", re.compile(r"(?i)\b(?:https?|tg)://[^\s<>\"]+")),
    ("url", re.compile(
        rf"(?i)(?<![\w@./\-])(?:[a-z0-9](?:[a-z0-9\-]{{0,61}}[a-z0-9])?\.)+(?:{_TLDS})"
        r"(?![\w\-])(?:[/?#][^\s<>\"]*)?")),
    ("bot_command", re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?"
                               r"(?![\w/<>])")),
    ("mention", re.compile(r"(?<![\w@])@[A-Za-z0-9_]{3,32}(?![\w@])")),
    ("hashtag", re.compile(r"(?<![\w#])#(?=\w*[^\W\d_])\w{1,256}")),
    ("cashtag", re.compile(r"(?<![\w$])\$[A-Z]{3,8}(?![\w$])")),
]
_BLOCKING = frozenset({"code", "pre", "text_link", "text_mention", "custom_emoji"})


def _add_automatic_entities(text: str, entities: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add what Telegram finds by itself: links, e-mails, commands, mentions, tags."""
    offsets = [0]
    for ch in text:
        offsets.append(offsets[-1] + (2 if ord(ch) > 0xFFFF else 1))
    taken = [(e["offset"], e["offset"] + e["length"]) for e in entities if e["type"] in _BLOCKING]
    found: list[dict[str, Any]] = []
    for kind, pattern in _AUTOMATIC:
        for match in pattern.finditer(text):
            start, end = match.start(), match.end()
            if kind == "url":
                while end > start and text[end - 1] in ".,;:!?)'\"":
                    end -= 1
            begin16, end16 = offsets[start], offsets[end]
            if any(begin16 < b and a < end16 for a, b in taken):
                continue
            taken.append((begin16, end16))
            found.append({"type": kind, "offset": begin16, "length": end16 - begin16})
    return entities + found


def entities_from_user_text(text: str) -> list[dict[str, Any]]:
    """Entities Telegram's apps attach to a person's plain text (commands, links, ...)."""
    return sorted(_add_automatic_entities(text, []), key=lambda e: (e["offset"], -e["length"]))
