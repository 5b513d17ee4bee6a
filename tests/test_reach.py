"""The verdict on PostgreSQL's own analysis: no operator-written code runs, nothing hidden leaks.

A database of its own (tests/data/reach_fixture.sql) holds what real databases hold: a user `=` between
text and integer, an implicit user cast, a domain whose CHECK calls a user function, a row-level-security
policy, views over an operator and a domain, a type with a user cast to text, a user function named like
newer SQL/JSON syntax, a generated column and a partial index on a hidden column, and text about objects
in a schema outside the limits. Every user function raises 'OPERATOR CODE RAN': no answer may carry it.
Each case (tests/data/reach_cases.tsv) is sent to the `query` tool as the superuser and as the
least-privilege reader, through the official MCP client.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from conftest import DemoDatabase
from mcp_helpers import mcp_client, text_of

from pg_mcp.guard.analysed import analyse
from pg_mcp.guard.node_dump import DumpError, Node, Value, read

DATA = Path(__file__).parent / "data"
DATABASE = "reach_t"
LIMITS = {
    "schemas": "app,public,trap",
    "hidden_columns": "app.people.email",
    "allow_functions": "public.percent_change",
}
RAN = "OPERATOR CODE RAN"


def _cases() -> list[tuple[str, str]]:
    lines = (DATA / "reach_cases.tsv").read_text().splitlines()
    return [tuple(line.split("\t", 1)) for line in lines if line and not line.startswith("#")]  # type: ignore[misc]


def _in_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


@pytest.fixture(scope="module")
def reach_db(pg: DemoDatabase) -> Iterator[dict[str, str]]:
    """The fixture database; the URLs of its superuser and of the least-privilege reader."""
    reader = urlsplit(pg.url).username or "mcp_reader"

    async def create() -> None:
        await pg.admin_execute(f"CREATE DATABASE {DATABASE}")
        conn = await asyncpg.connect(_in_database(pg.admin_url, DATABASE))
        try:
            await conn.execute((DATA / "reach_fixture.sql").read_text().replace("{reader}", reader))
        finally:
            await conn.close()

    asyncio.run(create())
    yield {"superuser": _in_database(pg.admin_url, DATABASE), "reader": _in_database(pg.url, DATABASE)}
    asyncio.run(pg.admin_execute(f"DROP DATABASE {DATABASE} WITH (FORCE)"))


@pytest.mark.parametrize("role", ["superuser", "reader"])
async def test_operator_code_never_runs_and_limits_hold(reach_db: dict[str, str], role: str) -> None:
    wrong: dict[str, str] = {}
    async with mcp_client(reach_db[role], **LIMITS) as client:
        for expected, sql in _cases():
            only, _, expected = expected.rpartition(":")
            if only and only != role:
                expected = "ok"  # e.g. the superuser bypasses row-level security: no policy, nothing runs
            result = await client.call_tool("query", {"sql": sql})
            text = text_of(result)
            got = "ok" if not result.is_error else text.partition("(rule ")[2].partition(")")[0] or "error"
            if RAN in text or got != expected:
                wrong[sql] = f"expected {expected}, got {got}: {text[:300]}"
    assert not wrong


async def test_an_allowed_bare_name_allows_the_function_in_any_schema(reach_db: dict[str, str]) -> None:
    async with mcp_client(reach_db["reader"], allow_functions="percent_change") as client:
        for sql in ("SELECT percent_change(110, 108, 2) AS p", "SELECT public.percent_change(110, 108) AS p"):
            result = await client.call_tool("query", {"sql": sql})
            assert not result.is_error and "1.85" in text_of(result), text_of(result)


async def test_the_tools_that_build_their_own_sql_are_judged_too(reach_db: dict[str, str]) -> None:
    """sample_rows and column_stats over a view with a user operator, explain of a domain cast."""
    async with mcp_client(reach_db["reader"]) as client:
        for tool, arguments in (
            ("sample_rows", {"table": "app.v_op"}),
            ("column_stats", {"table": "app.v_domain"}),
            ("explain", {"sql": "SELECT 'x'::trap.checked_code"}),
        ):
            result = await client.call_tool(tool, arguments)
            assert result.is_error and "rule user_defined" in text_of(result), (tool, text_of(result))
            assert RAN not in text_of(result)
        plain = await client.call_tool("sample_rows", {"table": "app.v_plain"})
        assert not plain.is_error, text_of(plain)


async def test_an_object_created_after_the_model_was_read_is_judged(reach_db: dict[str, str]) -> None:
    """The model is read again when the analysis names an object it has never seen."""
    async with mcp_client(reach_db["reader"]) as client:
        first = await client.call_tool("query", {"sql": "SELECT id FROM app.items WHERE id = 1"})
        assert not first.is_error
        conn = await asyncpg.connect(reach_db["superuser"])
        try:
            await conn.execute(
                "CREATE FUNCTION trap.late(integer) RETURNS integer LANGUAGE plpgsql IMMUTABLE "
                "AS $$ BEGIN RAISE EXCEPTION 'OPERATOR CODE RAN: late'; END $$;"
                "CREATE VIEW app.v_late AS SELECT trap.late(id) AS x FROM app.items"
            )
            result = await client.call_tool("query", {"sql": "SELECT * FROM app.v_late"})
        finally:
            await conn.execute("DROP VIEW app.v_late; DROP FUNCTION trap.late(integer)")
            await conn.close()
        assert result.is_error and "trap.late" in text_of(result) and RAN not in text_of(result)


# ------------------------------------------------------------------ the node-dump reader (pure)


def test_the_reader_reads_nodes_lists_escapes_and_datums() -> None:
    text = (
        '({QUERY :commandType 1 :rtable ({RANGETBLENTRY :alias {ALIAS :aliasname a"b :colnames <>} '
        ':eref {ALIAS :aliasname x\\ y\\(z :colnames ("id" "e\\ mail")} :rtekind 0 :relid 16384 '
        ":selectedCols (b 8 9)}) :targetList ({TARGETENTRY :expr {CONST :consttype 23 :constlen 4 "
        ":constvalue 4 [ 3 0 0 0 0 0 0 0 ] :location 7} :resno 1 :resjunk false}) :utilityStmt <>})"
    )
    (queries,) = read(text)
    assert isinstance(queries, list)
    query = _node(queries[0])
    assert query.tag == "QUERY" and query.get("utilityStmt") is None
    rte = _node(_list(query.get("rtable"))[0])
    assert _node(rte.get("alias")).get("aliasname") == 'a"b'
    assert _node(rte.get("eref")).get("aliasname") == "x y(z"
    assert _node(rte.get("eref")).get("colnames") == ['"id"', '"e mail"']
    assert rte.int("relid") == 16384 and rte.get("selectedCols") == ["b", "8", "9"]
    const = _node(_node(_list(query.get("targetList"))[0]).get("expr"))
    assert const.int("constvalue") == 4 and const.int("location") == 7, "the datum's bytes are skipped"
    statement = analyse(text)
    assert statement.relations == {16384} and statement.types == {23}


def _node(value: Value) -> Node:
    assert isinstance(value, Node)
    return value


def _list(value: Value) -> list[Value]:
    assert isinstance(value, list)
    return value


@pytest.mark.parametrize("text", ["({QUERY :a 1", "({QUERY :a 1)}", "{QUERY :a (1}}", "(1 2))"])
def test_the_reader_refuses_what_is_not_a_node_dump(text: str) -> None:
    with pytest.raises(DumpError):
        read(text)


async def test_planning_is_bounded_before_it_starts(pg: DemoDatabase) -> None:
    """Fifty UNION branches over information_schema.columns are 1,300 range-table entries once its view is
    expanded: refused on PostgreSQL's analysis, before EXPLAIN or execution could plan them."""
    union = " UNION ALL ".join(["SELECT column_name::text FROM information_schema.columns"] * 50)
    async with mcp_client(pg.url) as client:
        for tool in ("query", "explain"):
            result = await client.call_tool(tool, {"sql": union})
            assert result.is_error and "rule too_complex" in text_of(result), text_of(result)
            assert "the limit is 1,000" in text_of(result)
        few = " UNION ALL ".join(["SELECT column_name::text FROM information_schema.columns"] * 2)
        assert not (await client.call_tool("query", {"sql": few + " LIMIT 1"})).is_error


async def test_repeat_counts_the_characters_it_copies(pg: DemoDatabase) -> None:
    async with mcp_client(pg.url) as client:
        result = await client.call_tool("query", {"sql": f"SELECT repeat('{'x' * 1_000}', 1000) AS r"})
        assert result.is_error and "rule amplifier" in text_of(result), text_of(result)
        fine = await client.call_tool("query", {"sql": "SELECT repeat('ab', 1000) AS r"})
        assert not fine.is_error, text_of(fine)


async def test_a_generated_copy_of_a_hidden_column_is_hidden_everywhere(reach_db: dict[str, str]) -> None:
    async with mcp_client(reach_db["reader"], **LIMITS) as client:
        described = text_of(await client.call_tool("describe_table", {"table": "app.people"}))
        sampled = await client.call_tool("sample_rows", {"table": "app.people"})
        stats = await client.call_tool("column_stats", {"table": "app.people"})
    assert "country" in described and "email" not in described, described
    assert not sampled.is_error and "email" not in text_of(sampled), text_of(sampled)
    assert not stats.is_error and "email" not in text_of(stats), text_of(stats)


async def test_privileges_alone_refuse_the_operator_code_once_execute_is_revoked(
    reach_db: dict[str, str],
) -> None:
    """The guard bypassed: every case that reaches user code, sent straight to PostgreSQL in a read-only
    transaction by a role without EXECUTE on the database's own functions (what `-v strict=on` and
    `pg-mcp check` recommend), is refused by PostgreSQL's EXECUTE check, operators, casts, domains and
    policies included, before any of the code runs (planning included); all but the comparisons of an
    operator class, which PostgreSQL runs without that check."""
    cases = [sql for expected, sql in _cases() if expected.rpartition(":")[2] == "user_defined"]
    role = "reach_strict"
    admin = await asyncpg.connect(reach_db["superuser"])
    try:
        await admin.execute(
            f"CREATE ROLE {role} LOGIN PASSWORD 'strict-password'; GRANT CONNECT ON DATABASE {DATABASE} TO {role};"
            f"GRANT USAGE ON SCHEMA app, trap TO {role}; GRANT SELECT ON ALL TABLES IN SCHEMA app TO {role};"
            "REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA trap, public FROM PUBLIC;"
        )
        parts = urlsplit(reach_db["superuser"])
        url = urlunsplit(parts._replace(netloc=f"{role}:strict-password@{parts.hostname}:{parts.port}"))
        conn = await asyncpg.connect(url)
        outcomes: dict[str, str] = {}
        try:
            for sql in cases:
                try:
                    async with conn.transaction(readonly=True):
                        await conn.fetch(sql)
                    outcomes[sql] = "ran without the code"
                except asyncpg.PostgresError as error:
                    outcomes[sql] = "ran" if RAN in str(error) else type(error).__name__
        finally:
            await conn.close()
    finally:
        await admin.execute(
            "GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA trap, public TO PUBLIC;"
            f"DROP OWNED BY {role}; DROP ROLE {role}"
        )
        await admin.close()
    assert len(cases) >= 15
    ran = {sql for sql, outcome in outcomes.items() if outcome == "ran"}
    assert ran <= SORTED_BY_OPERATOR_CLASS, outcomes
    harmless = {sql for sql, outcome in outcomes.items() if outcome == "ran without the code"}
    refused = {sql for sql, outcome in outcomes.items() if outcome == "InsufficientPrivilegeError"}
    assert len(refused | ran | harmless) == len(cases) and harmless <= SORTED_BY_OPERATOR_CLASS, outcomes


#: PostgreSQL calls an operator class's support functions (sorting, grouping, record comparison)
#: without checking EXECUTE: for these only the guard stands in the way (the cases above refuse them).
SORTED_BY_OPERATOR_CLASS = {"SELECT g FROM app.grades ORDER BY g", "SELECT DISTINCT gr FROM app.grades gr"}
