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
    stack: list[Node | list[Value]] = []
    waiting: list[str | None] = []  # per open node: the field waiting for its value

    def put(value: Value) -> None:
        if not stack:
            root.append(value)
            return
        top = stack[-1]
        if isinstance(top, list):
            top.append(value)
        elif waiting[-1] is not None:  # no field waits for a datum's bytes (`:constvalue 4 [ 3 0 ]`)
            top.fields[waiting[-1]] = value
            waiting[-1] = None

    tokens = (match.group() for match in _TOKEN.finditer(text))
    for token in tokens:
        if token == "{":
            stack.append(Node(_unescape(next(tokens, ""))))
            waiting.append(None)
        elif token in ("}", ")"):
            if not stack or isinstance(stack[-1], Node) != (token == "}"):
                raise DumpError(f"an unbalanced {token}")
            done = stack.pop()
            waiting.pop()
            put(done)
        elif token == "(":
            stack.append([])
            waiting.append(None)
        elif token.startswith(":") and stack and isinstance(stack[-1], Node):
            waiting[-1] = token[1:]
            stack[-1].fields[token[1:]] = None
        else:
            put(None if token == "<>" else _unescape(token))
    if stack:
        raise DumpError("the text ends inside a node")
    return root


def _unescape(token: str) -> str:
    return re.sub(r"\\(.)", r"\1", token, flags=re.DOTALL) if "\\" in token else token
