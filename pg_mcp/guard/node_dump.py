"""Read PostgreSQL's text form of a node tree (`nodeToString`, what `debug_print_rewritten` sends).

The format is PostgreSQL's own (outfuncs.c / read.c): `{NODE :field value ...}` for a node,
`( ... )` for a list (`(b 8 9)` a bitmapset, `(o 23 25)` an OID list, `(i 1 2)` an integer list),
`<>` for NULL, and bare tokens for everything else, special characters escaped with a backslash. A
datum's bytes print as `4 [ 3 0 0 0 ]`. The reader is iterative (no recursion limit) and linear.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

#: A token: a delimiter, or a run of anything else in which `\x` stands for x (PostgreSQL escapes
#: whitespace, parentheses, braces and backslashes inside tokens, and nowhere else).
_TOKEN = re.compile(r"[{}()]|(?:\\.|[^\s{}()\\])+", re.DOTALL)


@dataclass
class Node:
    """One node: its tag (`QUERY`, `OPEXPR`, `VAR` ...) and its fields by name (without the colon)."""

    tag: str
    fields: dict[str, Value] = field(default_factory=dict)

    def get(self, name: str) -> Value:
        return self.fields.get(name)

    def int(self, name: str, default: int = 0) -> int:
        value = self.fields.get(name)
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                return default
        return default


Value = Node | list["Value"] | str | None


class DumpError(ValueError):
    """The text is not a node dump this reader understands."""


def read(text: str) -> list[Value]:
    """The values the text holds (a list of QUERY nodes for a rewritten parse tree)."""
    root: list[Value] = []
    # Open containers, each with the field of a node waiting for its value (None: nothing waits, as
    # for the bytes of a datum after `:constvalue 4`, or for a list's items).
    stack: list[tuple[Node | list[Value], str | None]] = []
    tokens = _TOKEN.findall(text)
    position, count = 0, len(tokens)
    while position < count:
        token = tokens[position]
        position += 1
        first = token[0]
        value: Value
        if first == "{":
            tag = tokens[position] if position < count else ""
            position += 1
            stack.append((Node(_unescape(tag)), None))
            continue
        if first == "(" and len(token) == 1:
            stack.append(([], None))
            continue
        if first in "})" and len(token) == 1:
            if not stack or isinstance(stack[-1][0], Node) != (first == "}"):
                raise DumpError(f"an unbalanced {token}")
            value = stack.pop()[0]
        elif first == ":" and stack and isinstance(stack[-1][0], Node):
            node = stack[-1][0]
            node.fields[token[1:]] = None
            stack[-1] = (node, token[1:])
            continue
        else:
            value = None if token == "<>" else (_unescape(token) if "\\" in token else token)
        if not stack:
            root.append(value)
            continue
        container, waiting = stack[-1]
        if isinstance(container, list):
            container.append(value)
        elif waiting is not None:
            container.fields[waiting] = value
            stack[-1] = (container, None)
    if stack:
        raise DumpError("the text ends inside a node")
    return root


def _unescape(token: str) -> str:
    return _ESCAPED.sub(r"\1", token) if "\\" in token else token


_ESCAPED = re.compile(r"\\(.)", re.DOTALL)
