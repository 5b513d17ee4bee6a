"""Every tool's output fits the result-byte budget and says what was cut (pure, no database)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from pg_mcp.database.records import (
    ColumnDescription,
    ColumnStatistics,
    Edge,
    Overview,
    SchemaSummary,
    SearchHit,
    TableDescription,
    TableSummary,
)
from pg_mcp.database.session import Column, QueryResult
from pg_mcp.render.catalog_text import (
    render_catalog_summary,
    render_description,
    render_overview,
    render_plan,
    render_relationships,
    render_schemas,
    render_search,
    render_stats,
    render_tables,
)
from pg_mcp.render.results import bounded_structured, bounded_text, render_result
from pg_mcp.render.values import Limits

BUDGET = 20_000
LIMITS = Limits(max_result_bytes=BUDGET)
N = 3000


def _plan(depth: int) -> dict[str, Any]:
    node: dict[str, Any] = {
        "Node Type": "Seq Scan",
        "Relation Name": "t",
        "Plan Rows": 1,
        "Filter": "x" * 100,
    }
    for _ in range(depth):
        node = {"Node Type": "Append", "Plan Rows": 1, "Total Cost": 1.0, "Plans": [node, node]}
    return node


SCHEMAS = [SchemaSummary(name=f"s{i}", tables=i, comment="c" * 200) for i in range(N)]
RENDERERS: dict[str, Callable[[Limits], str]] = {
    "plan": lambda limits: render_plan(_plan(12), limits),
    "search": lambda limits: render_search(
        "p",
        [
            SearchHit(
                schema="s",
                table_name="t" * 40,
                kind="table",
                column_name="c",
                type="text",
                comment="x" * 500,
                rank=1,
            )
        ]
        * N,
        N,
        limits,
    ),
    "tables": lambda limits: render_tables(
        [TableSummary(schema="s", name="t" * 40, kind="table", estimated_rows=1, comment="c")] * N,
        0,
        N,
        limits,
    ),
    "relationships": lambda limits: render_relationships(
        "s",
        [
            Edge.model_validate(
                {
                    "from": "a" * 60,
                    "from_columns": ["x"] * 50,
                    "to": "b",
                    "to_columns": ["y"] * 50,
                    "name": "k",
                }
            )
        ]
        * N,
        N,
        limits,
    ),
    "stats": lambda limits: render_stats(
        "s.t",
        10,
        [ColumnStatistics(column=f"c{i}", type="text", most_common_vals="{a,b}") for i in range(N)],
        limits,
    ),
    "description": lambda limits: render_description(
        TableDescription(
            schema="s",
            name="t",
            kind="view",
            estimated_rows=1,
            comment="comment",
            columns=[ColumnDescription(name=f"c{i}", type="text", nullable=True) for i in range(N)],
            definition="SELECT " + "x, " * 50_000,
        ),
        limits,
    ),
    "schemas": lambda limits: render_schemas(SCHEMAS, limits),
    "catalog summary": lambda limits: render_catalog_summary(SCHEMAS, limits),
    "overview": lambda limits: render_overview(
        Overview(database="d", size_bytes=1, role="r", version="16", extensions=[], schemas=SCHEMAS),
        limits,
    ),
}


@pytest.mark.parametrize("name", sorted(RENDERERS))
def test_every_renderer_fits_the_budget_and_says_how_it_was_cut(name: str) -> None:
    unbounded = RENDERERS[name](Limits(max_result_bytes=10**9))
    assert len(unbounded.encode()) > BUDGET, "the case is big enough to need cutting"
    text = RENDERERS[name](LIMITS)
    assert len(text.encode()) <= BUDGET
    assert text.splitlines()[-1].startswith(f"(output cut at {BUDGET:,} bytes: ")
    assert unbounded.startswith(text.rsplit("\n", 1)[0]), "whole lines from the start are kept"


def test_a_long_search_pattern_is_not_echoed_whole() -> None:
    text = render_search("x" * 4_000_000, [], 50)
    assert len(text) < 300 and "nothing matches" in text


def test_a_single_line_over_the_budget_is_cut_at_a_character_boundary() -> None:
    text = bounded_text("é" * 5000, Limits(max_result_bytes=1024), "narrow it")
    assert len(text.encode()) <= 1024
    assert text.endswith("(output cut at 1,024 bytes: 1 of 1 lines shown; narrow it)")


def test_small_outputs_are_untouched() -> None:
    assert bounded_text("a\nb", LIMITS, "x") == "a\nb"
    data = {"hits": [1, 2, 3], "plan": {"a": 1}}
    assert bounded_structured(data, LIMITS) is data


def test_structured_lists_are_shortened_and_a_big_plan_dropped() -> None:
    hits = [{"table": f"t{i}", "comment": "x" * 100} for i in range(N)]
    bounded = bounded_structured({"hits": hits}, LIMITS)
    assert len(json.dumps(bounded, ensure_ascii=False, separators=(",", ":")).encode()) <= BUDGET
    assert bounded["truncated"] is True and 0 < len(bounded["hits"]) < N
    assert bounded["hits"] == hits[: len(bounded["hits"])]
    assert f"hits: first {len(bounded['hits']):,} of {N:,}" in bounded["cut"]
    plan = bounded_structured({"plan": _plan(12)}, LIMITS)
    assert plan["plan"] is None and plan["truncated"] is True and "plan: omitted (" in plan["cut"]


def test_query_notes_say_bytes_or_max_rows() -> None:
    columns = [Column("n", "int4", "pg_catalog")]
    by_bytes = QueryResult(columns, [(1,), (2,)], truncated=True, elapsed_ms=1.0, byte_cut=True)
    by_rows = QueryResult(columns, [(1,), (2,)], truncated=True, elapsed_ms=1.0)
    bytes_note = render_result(by_bytes, 100, LIMITS, 1000).text.splitlines()[-1]
    rows_note = render_result(by_rows, 2, LIMITS, 1000).text.splitlines()[-1]
    assert f"output cut at {BUDGET:,} bytes" in bytes_note and "max_rows=" not in bytes_note
    assert "cut at max_rows=2" in rows_note and "bytes" not in rows_note
    assert render_result(by_bytes, 100, LIMITS, 1000).structured["truncated"] is True
