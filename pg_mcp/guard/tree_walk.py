"""Walking libpg_query's JSON tree of a statement (pglast's `parse_sql_json`), iteratively."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any


def nodes(tree: Any) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every (node kind, node) in the tree, at any depth: a node is a dict under a capitalised key."""
    pending = [tree]
    while pending:
        value = pending.pop()
        if isinstance(value, list):
            pending.extend(value)
        elif isinstance(value, dict):
            for key, child in value.items():
                if key[:1].isupper() and isinstance(child, dict):
                    yield key, child
                if isinstance(child, (dict, list)):
                    pending.append(child)
