"""Query results as compact text a model reads cheaply, within the result-byte budget (pure).

Text results are tab-separated: a header of `name:type` cells, one line per row, and a final
line that gives the row count and says exactly how the result was cut, if it was. Every text
and structured output is bounded by the result-byte budget (`Limits`): query results by whole
rows in `render_result`, every other tool through `bounded_text` and `bounded_structured`, which
say what was cut and how to get the rest.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from pg_mcp.database.session import QueryResult
from pg_mcp.render.values import Limits, json_value, text_cell, type_label

#: Bytes kept free under the budget for the note that says what was cut.
NOTE_ROOM = 400


@dataclass(frozen=True)
class RenderedResult:
    """A query result as the model reads it (text) and as structured content."""

    text: str
    structured: dict[str, Any]


def render_result(
    result: QueryResult, max_rows: int, limits: Limits, max_rows_limit: int, row_argument: str = "max_rows"
) -> RenderedResult:
    """Text and structured forms of the same rows, cut at the byte budget with the cut stated;
    `row_argument` is the tool argument that sets the row cap (named in the note)."""
    columns = [{"name": c.name, "type": type_label(c)} for c in result.columns]
    header = "\t".join(f"{c['name']}:{c['type']}" for c in columns)
    lines = [header]
    size = len(header.encode())
    rows: list[list[Any]] = []
    byte_cut = False
    for raw in result.rows:
        row = [json_value(v, c.type_name, limits) for v, c in zip(raw, result.columns, strict=True)]
        line = "\t".join(text_cell(v) for v in row)
        size += len(line.encode()) + 1
        if size > limits.max_result_bytes and rows:
            byte_cut = True
            break
        rows.append(row)
        lines.append(line)
    byte_cut = byte_cut or result.byte_cut
    truncated = result.truncated or byte_cut
    note = _truncation_note(
        len(rows), max_rows, byte_cut, result.truncated, limits, max_rows_limit, row_argument
    )
    lines.append(note)
    structured = {
        "columns": columns,
        "rows": rows,
        "row_count": len(rows),
        "truncated": truncated,
        "note": note,
    }
    return RenderedResult("\n".join(lines), structured)


def _truncation_note(
    shown: int,
    max_rows: int,
    byte_cut: bool,
    more_rows: bool,
    limits: Limits,
    max_rows_limit: int,
    row_argument: str = "max_rows",
) -> str:
    noun = "row" if shown == 1 else "rows"
    if byte_cut:
        return (
            f"({shown} {noun} shown: output cut at {limits.max_result_bytes:,} bytes "
            f"(PG_MCP_MAX_RESULT_BYTES), before {row_argument}; more rows exist. "
            "Select fewer or narrower columns, or page with ORDER BY ... LIMIT/OFFSET.)"
        )
    if more_rows:
        more = f", or pass {row_argument} up to {max_rows_limit}" if max_rows < max_rows_limit else ""
        return (
            f"({shown} {noun} shown: cut at {row_argument}={max_rows}; more rows exist. Aggregate or filter "
            f"with WHERE{more}, or page with ORDER BY ... LIMIT/OFFSET.)"
        )
    return f"({shown} {noun})"


def bounded_text(text: str, limits: Limits, rest: str) -> str:
    """`text` within the byte budget: whole lines up to it, then a note on what was cut and, in
    `rest`, how to get the rest. One helper, so every tool cuts and says so the same way."""
    budget = limits.max_result_bytes
    if len(text) <= budget // 4 or len(text.encode()) <= budget:  # UTF-8: at most 4 bytes a character
        return text
    lines = text.split("\n")
    room = max(0, budget - NOTE_ROOM - len(rest.encode()))
    kept: list[str] = []
    used = 0
    for line in lines:
        used += len(line.encode()) + 1
        if used > room:
            break
        kept.append(line)
    if not kept:  # the first line alone is over the budget: its start, cut at a character boundary
        kept = [lines[0].encode()[:room].decode(errors="ignore") + "…"]
    note = f"(output cut at {budget:,} bytes: {len(kept):,} of {len(lines):,} lines shown; {rest})"
    return "\n".join([*kept, note])


def bounded_structured(data: dict[str, Any], limits: Limits) -> dict[str, Any]:
    """`data` within the byte budget as compact JSON, with `truncated` and a `cut` note when it is not.

    The largest lists are shortened from the end first (their first items are the ones the
    text shows too); a value still too big (a JSON plan tree, a long definition) is replaced by
    None. `cut` names each field cut and how.
    """
    budget = limits.max_result_bytes - NOTE_ROOM
    sizes = {key: _json_bytes(value) for key, value in data.items()}
    total = sum(sizes.values()) + len(sizes) * 4
    if total <= limits.max_result_bytes:
        return data
    bounded = dict(data)
    cuts: list[str] = []
    for key in sorted(sizes, key=sizes.__getitem__, reverse=True):
        if total <= budget:
            break
        value = bounded[key]
        if isinstance(value, list) and value:
            items = [_json_bytes(item) + 1 for item in value]
            keep = len(items)
            while keep and total > budget:
                keep -= 1
                total -= items[keep]
            bounded[key] = value[:keep]
            cuts.append(f"{key}: first {keep:,} of {len(value):,}")
        else:
            total -= sizes[key]
            bounded[key] = None
            cuts.append(f"{key}: omitted ({sizes[key]:,} bytes)")
    bounded["truncated"] = True
    bounded["cut"] = f"structured content cut at {limits.max_result_bytes:,} bytes: " + "; ".join(cuts)
    return bounded


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str).encode())
