"""Reading JSON text without parsing it: Python's parser recurses once per level of nesting."""

from __future__ import annotations


def nests_deeper_than(text: str, limit: int) -> bool:
    """Whether JSON text nests more than `limit` levels (brackets inside strings do not count).

    Linear, and a single count when the text holds few brackets, so it can run before every parse.
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            if depth > limit:
                return True
        elif char in "]}":
            depth -= 1
    return False
