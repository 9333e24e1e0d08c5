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
    if size > MAX_FILE_BYTES:
        raise SourceError(
            f"the file is {size / 1_000_000:.1f} MB; a campaign file must be under "
            f"{MAX_FILE_BYTES // 1_000_000} MB. Is this the right file?"
        )
    raw = path.read_bytes()
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
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else None
        what = exc.problem or str(exc)
        raise SourceError(f"this is not valid YAML: {what}. Check indentation and colons.", line) from None
    except yaml.YAMLError as exc:
        raise SourceError(f"this is not valid YAML: {exc}") from None
    if node is None:
        raise SourceError("the file is empty", 1)
    src = Source(data=None, name=name)
    constructor = yaml.SafeLoader("")
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
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):
                raise SourceError("a key must be a plain word", key_node.start_mark.line + 1)
            key = _construct(key_node, constructor)
            if not isinstance(key, str):
                # `yes:`, `1:` or `2026-01-01:` as keys: keep what the author wrote.
                key = key_node.value
            if key in out:
                raise SourceError(f"the key '{key}' appears twice here", key_node.start_mark.line + 1)
            src.lines[(*path, key)] = key_node.start_mark.line + 1
            out[key] = _build(value_node, (*path, key), src, constructor, budget)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(item, (*path, i), src, constructor, budget) for i, item in enumerate(node.value)]
    return _construct(node, constructor)
