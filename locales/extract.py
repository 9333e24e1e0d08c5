"""A Babel extractor that reads Python through its syntax tree, so no gettext call is missed.

Babel's own Python extractor reads tokens and cannot see a call such as `f"<b>{_('Campaigns')}</b>"`
inside an f-string: that text would never reach the catalogs and would stay English for everyone.
The syntax tree has every call, wherever it is written. `babel.cfg` names this function.
"""

from __future__ import annotations

import ast
from collections.abc import Collection, Iterator, Mapping
from typing import IO, Any

from babel.messages.extract import extract_python as babel_extract_python

Found = tuple[int, str, str | tuple[str | None, ...] | None, list[str]]


def extract_python(fileobj: IO[bytes], keywords: Collection[str], comment_tags: Collection[str],
                   options: Mapping[str, Any]) -> Iterator[Found]:
    """Yield (line, function name, arguments, comments) for every call of a gettext keyword.

    Arguments that are not string literals are yielded as None, so Babel skips a call such as
    `_(HINTS[key])` whose text is marked elsewhere.
    """
    data = fileobj.read()
    encoding = str(options.get("encoding", "utf-8"))
    try:
        tree = ast.parse(data.decode(encoding) if isinstance(data, bytes) else data)
    except (SyntaxError, UnicodeDecodeError):
        # a file Python cannot parse: let Babel's token reader do what it can
        fileobj.seek(0)
        yield from babel_extract_python(fileobj, keywords, comment_tags, options)
        return
    found: list[Found] = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        name = func.id if isinstance(func, ast.Name) else func.attr if isinstance(func, ast.Attribute) else None
        if name not in keywords or not node.args:
            continue
        args = tuple(a.value if isinstance(a, ast.Constant) and isinstance(a.value, str) else None
                     for a in node.args)
        found.append((node.lineno, name, args[0] if len(args) == 1 else args, []))
    yield from sorted(found, key=lambda f: f[0])
