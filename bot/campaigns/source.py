"""Reading campaign YAML while remembering the line of every key, so errors can name it."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1_000_000
# Aliases (*name) can make a small file expand enormously ("billion laughs"); no campaign
# comes near this many values.
MAX_VALUES = 200_000

Path_ = tuple[str | int, ...]


class CampaignLoader(yaml.SafeLoader):
    """PyYAML's safe loader, except that a `?` inside a text in braces is part of the text.

    PyYAML ends a plain scalar at `?` inside `{...}` or `[...]`, so the documented
    `text: {en: How easy was it?, ar: ...}` failed with "expected ',' or '}', but got '?'".
    YAML 1.2 (and every other parser) reads it as the question; so do we. A `?` that starts a
    key (`{? a : b}`) is still an explicit key.
    """

    def scan_plain(self):  # type: ignore[no-untyped-def]
        # PyYAML 6's Scanner.scan_plain with `?` removed from the flow-context stop characters.
        chunks: list[str] = []
        start_mark = self.get_mark()
        end_mark = start_mark
        indent = self.indent + 1
        spaces: list[str] = []
        blank = "\0 \t\r\n\x85\u2028\u2029"
        while True:
            length = 0
            if self.peek() == "#":
                break
            while True:
                ch = self.peek(length)
                if (ch in blank
                        or (ch == ":" and self.peek(length + 1) in blank + (",[]{}" if self.flow_level else ""))
                        or (self.flow_level and ch in ",[]{}")):
                    break
                length += 1
            if length == 0:
                break
            self.allow_simple_key = False
            chunks.extend(spaces)
            chunks.append(self.prefix(length))
            self.forward(length)
            end_mark = self.get_mark()
            spaces = self.scan_plain_spaces(indent, start_mark)
            if not spaces or self.peek() == "#" or (not self.flow_level and self.column < indent):
                break
        return yaml.tokens.ScalarToken("".join(chunks), True, start_mark, end_mark)


MERGE_TAG = "tag:yaml.org,2002:merge"


def _unclosed_bracket(text: str) -> int | None:
    """The line of the innermost '{' or '[' still open when the YAML ends (comments ignored)."""
    stack: list[int] = []
    try:
        for token in yaml.scan(text, Loader=CampaignLoader):
            if isinstance(token, yaml.FlowMappingStartToken | yaml.FlowSequenceStartToken):
                stack.append(token.start_mark.line + 1)
            elif isinstance(token, yaml.FlowMappingEndToken | yaml.FlowSequenceEndToken) and stack:
                stack.pop()
    except yaml.YAMLError:
        pass
    return stack[-1] if stack else None


class SourceError(Exception):
    """The file cannot be read as YAML at all; `line` is 1-based when known."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.line = line


@dataclass
class Source:
    """A parsed YAML document and the line of each value and key in it."""

    data: Any
    lines: dict[Path_, int] = field(default_factory=dict)
    name: str = "<campaign>"

    def line_of(self, path: Path_) -> int | None:
        """The line of the deepest known part of `path`."""
        p = tuple(path)
        while p:
            if p in self.lines:
                return self.lines[p]
            p = p[:-1]
        return self.lines.get((), None)


def read_text(path: Path) -> str:
    """Read a campaign file, refusing huge or non-UTF-8 files with a clear reason."""
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise SourceError(f"file not found: {path}") from None
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}") from None
    if path.is_dir():
        raise SourceError(f"{path} is a folder: give the campaign file itself, e.g. {path}/campaign.yaml")
    if size > MAX_FILE_BYTES:
        raise SourceError(
            f"the file is {size / 1_000_000:.1f} MB; a campaign file must be under "
            f"{MAX_FILE_BYTES // 1_000_000} MB. Is this the right file?"
        )
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise SourceError(f"cannot read {path}: {exc.strerror or exc}. Check that the file may be "
                          "read by this user.") from None
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise SourceError(
            "the file is not UTF-8 text (byte %d cannot be read). Save it as UTF-8: in most "
            "editors, 'Save as' then choose the encoding 'UTF-8'." % exc.start,
            line,
        ) from None


def parse(text: str, name: str = "<campaign>") -> Source:
    """Parse YAML text into plain data plus a line map; duplicate keys are an error."""
    try:
        node = yaml.compose(text, Loader=CampaignLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or str(exc)
        if "'\\t'" in what:
            raise SourceError("a tab is used to indent here: YAML needs spaces. Replace the tab with "
                              "spaces (most editors: 'convert indentation to spaces').", line) from None
        if "undefined alias" in what:
            raise SourceError(f"this is not valid YAML: {what}. An alias (*name) must come after its "
                              "anchor (&name), spelled the same.", line) from None
        context = exc.context or ""
        at_end = exc.problem_mark is not None and exc.problem_mark.index >= len(text.rstrip())
        if "another document" in what:
            raise SourceError("the file goes on after a '---' line with a second document: a campaign "
                              "file is one document. Remove the '---' line, or put the rest in its own "
                              "file.", line) from None
        if at_end and exc.context_mark is not None and "quoted scalar" in context:
            raise SourceError("this is not valid YAML: a quote opened here is never closed: add the "
                              "closing quote at the end of the text", exc.context_mark.line + 1) from None
        if at_end and "flow" in context:
            opened = _unclosed_bracket(text)
            raise SourceError("this is not valid YAML: a '{' or '[' opened on this line is never "
                              "closed. If a text here has ' #' in it, put the text in quotes: ' #' "
                              "starts a comment.",
                              opened or line) from None
        if "flow" in context and ("got ':'" in what or "found ':'" in what):
            raise SourceError(f"this is not valid YAML: {what}. A text that contains ': ' must be in "
                              "quotes, e.g. en: \"Note: bring your card\".", line) from None
        if "mapping values are not allowed" in what:
            raise SourceError(f"this is not valid YAML: {what}. A text that contains ': ' must be in "
                              "quotes, e.g. en: \"Why: do you come here?\" (or check the indentation "
                              "of this line).", line) from None
        raise SourceError(f"this is not valid YAML: {what}. Check indentation and colons.", line) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"this is not valid YAML: {exc}") from None
    if node is None:
        raise SourceError("the file is empty", 1)
    src = Source(data=None, name=name)
    constructor = CampaignLoader("")
    budget = [MAX_VALUES]
    src.data = _build(node, (), src, constructor, budget)
    return src


def _construct(node: yaml.ScalarNode, constructor: yaml.SafeLoader) -> Any:
    """One scalar's value; a value PyYAML cannot build (a date like 2026-13-45, a bad `!!int`)
    is a SourceError with its line, never a crash."""
    try:
        return constructor.construct_object(node)
    except yaml.YAMLError as exc:
        raise SourceError(f"cannot read this value: {exc}", node.start_mark.line + 1) from None
    except (ValueError, TypeError, KeyError, IndexError, AttributeError, OverflowError) as exc:
        implicit = constructor.resolve(yaml.ScalarNode, node.value, (True, False))
        if node.tag != implicit:
            hint = " Remove the '!!' tag before it, or put the value in quotes."
        elif node.tag.endswith(":timestamp"):
            hint = " Write dates as 2026-12-01T09:00:00Z, or put the text in quotes."
        else:
            hint = " Put it in quotes if it is meant as text."
        detail = f": {exc}." if isinstance(exc, ValueError | OverflowError) and str(exc) else "."
        if "digits" in str(exc) or isinstance(exc, OverflowError):
            detail, hint = ": the number is far too large.", " Check for a typing slip."
        raise SourceError(f"cannot read the value '{node.value[:60]}'{detail}{hint}",
                          node.start_mark.line + 1) from None


def _build(node: yaml.Node, path: Path_, src: Source, constructor: yaml.SafeLoader,
           budget: list[int]) -> Any:
    budget[0] -= 1
    if budget[0] < 0:
        raise SourceError("the file expands to too many values (aliases such as *name repeat whole "
                          "parts of it); write the campaign out without aliases",
                          node.start_mark.line + 1)
    src.lines.setdefault(path, node.start_mark.line + 1)
    if isinstance(node, yaml.MappingNode):
        out: dict[Any, Any] = {}
        merged: set[Any] = set()  # keys taken from `<<: *anchor`, which the mapping's own keys override
        for key_node, value_node in node.value:
            if isinstance(key_node, yaml.ScalarNode) and key_node.tag == MERGE_TAG:
                for key, value in _merge(value_node, path, src, constructor, budget).items():
                    if key not in out:
                        out[key] = value
                        merged.add(key)
                continue
            if not isinstance(key_node, yaml.ScalarNode):
                raise SourceError("a key must be a plain word", key_node.start_mark.line + 1)
            key = _construct(key_node, constructor)
            if not isinstance(key, str):
                # `yes:`, `1:` or `2026-01-01:` as keys: keep what the author wrote.
                key = key_node.value
            if key in out and key not in merged:
                raise SourceError(f"the key '{key}' appears twice here", key_node.start_mark.line + 1)
            merged.discard(key)
            src.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), src, constructor, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src, constructor, budget) for i, item in enumerate(node.value)]
    value = _construct(node, constructor)
    if (isinstance(value, bool | int | float) or _is_date(value)) and node.style is None \
            and wants_text(path) and not _plain_number_in_show_if(path, value, node.value):
        # `yes`, `no`, `1`, `25_64` or `2026-01-01` where an id or a text belongs: what the
        # author wrote, not the number, true/false or date YAML 1.1 would make of it.
        return node.value
    return value


def _plain_number_in_show_if(path: Path_, value: Any, written: str) -> bool:
    """`show_if: {ease: [1, 2]}` keeps its numbers (a rating's values); `[25_64]` or `[no]` do not."""
    return (len(path) == 5 and path[2] == "show_if" and isinstance(value, int)
            and not isinstance(value, bool) and str(value) == written)


def _is_date(value: Any) -> bool:
    import datetime as _dt

    return isinstance(value, _dt.date)


_TEXT_MAPS = {"title", "intro", "text"}


def wants_text(path: Path_) -> bool:
    """Whether the campaign format expects a text (an id, a code, a translation) at `path`."""
    if not path:
        return False
    *head, last = path
    parent = head[-1] if head else None
    if len(path) == 1:
        return last in {"id", "service"}
    if parent == "languages" and len(path) == 2:
        return True
    if len(head) >= 1 and parent in _TEXT_MAPS:
        return True  # title/intro/text: {lang: text}
    top = path[0]
    if top in {"groups", "questions"} and last == "id" and len(path) in {3, 5}:
        return True  # a dimension's, question's or option's id
    if top == "questions" and len(path) == 5 and path[2] in {"labels", "show_if"}:
        return True  # a rating label, or a value a show_if lists
    if top == "invites" and len(path) >= 3:
        return path[2] in {"code", "partner"} and len(path) == 3 or (path[2] == "groups" and len(path) >= 4)
    return False


def _merge(node: yaml.Node, path: Path_, src: Source, constructor: yaml.SafeLoader,
           budget: list[int]) -> dict[Any, Any]:
    """The keys a YAML merge (`<<: *base` or `<<: [*a, *b]`) brings in; the first named wins."""
    parts = node.value if isinstance(node, yaml.SequenceNode) else [node]
    out: dict[Any, Any] = {}
    for part in parts:
        if not isinstance(part, yaml.MappingNode):
            raise SourceError("'<<:' must be followed by an anchor of a set of 'key: value' lines "
                              "(such as <<: *base) or a list of them", node.start_mark.line + 1)
        for key, value in _build(part, path, src, constructor, budget).items():
            out.setdefault(key, value)
    return out
