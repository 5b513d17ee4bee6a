"""The read-only promise against PostgreSQL's own reading: table-driven corpora in tests/data.

Every attack must be refused by the guard with its rule; every nearby legitimate statement must
pass the guard and then run on the real demo database, as the superuser and as the least-privilege
reader, through the same path a tool call takes (guard, plan check, executor).
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from pathlib import Path

import pytest
from conftest import DemoDatabase
from factories import context_for
from test_readonly_role import STRICT_FUNCTIONS, _run_role_script, _url_for

from pg_mcp import explore
from pg_mcp.errors import GuardError, QueryError
from pg_mcp.guard import GuardPolicy, check_query, check_query_async

DATA = Path(__file__).parent / "data"


def _attacks() -> list[tuple[str, str]]:
    cases = []
    for line in (DATA / "readonly_attacks.tsv").read_text().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        rule, sql = line.split("\t", 1)
        cases.append((rule, sql.replace("{NL}", "\n").replace("{NBSP}", "\u00a0")))
    return cases


def _legit() -> list[str]:
    lines = (DATA / "readonly_legit.sql").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("--")]


ATTACKS = _attacks()
LEGIT = _legit()


@pytest.mark.parametrize(("rule", "sql"), ATTACKS, ids=[f"{i}-{r}" for i, (r, _) in enumerate(ATTACKS)])
def test_attack_is_refused_with_its_rule(rule: str, sql: str) -> None:
    with pytest.raises(GuardError) as caught:
        check_query(sql, 10, GuardPolicy(one_arg_functions=frozenset({"pg_sleep"})))
    assert caught.value.rule == rule, caught.value.message
    assert caught.value.hint


@pytest.mark.parametrize("sql", LEGIT)
def test_nearby_legitimate_statement_passes_the_guard(sql: str) -> None:
    assert check_query(sql, 10, GuardPolicy(one_arg_functions=frozenset())).statement.strip()


@pytest.mark.asyncio(loop_scope="session")
@pytest.mark.parametrize("who", ["superuser", "reader", "role_script", "role_script_strict"])
async def test_corpus_against_the_database(pg: DemoDatabase, who: str) -> None:
    role = f"corpus_{who}_{secrets.token_hex(3)}"
    grant_back = ""
    if who == "superuser":
        url = pg.admin_url
    elif who == "reader":
        url = pg.url
    else:
        if who == "role_script_strict":
            grant_back = (await pg.admin_fetch(STRICT_FUNCTIONS))[0][0]
        strict = ("-v", "strict=on") if who == "role_script_strict" else ()
        _run_role_script(pg, role, *strict, schemas="sales, inventory, hr, analytics")
        url = _url_for(pg, role)
    explorer = context_for(url)
    db = explorer.db
    try:
        for rule, sql in ATTACKS:
            with pytest.raises(GuardError) as caught:
                await explore.query(explorer, sql)
            assert caught.value.rule == rule, (sql, caught.value.message)
        failures = []
        for sql in LEGIT:
            try:
                await explore.query(explorer, sql)
            except Exception as error:
                failures.append((sql, str(error)))
        assert not failures, failures
    finally:
        await db.close()
        if who.startswith("role_script"):
            await pg.admin_execute(f"DROP OWNED BY {role}; DROP ROLE {role}; {grant_back}")


PLAN_OBJECTS = """
CREATE SCHEMA shadow_t;
GRANT USAGE ON SCHEMA shadow_t TO PUBLIC;
CREATE FUNCTION shadow_t.concat(text, VARIADIC anyarray) RETURNS text LANGUAGE sql
    AS $$ SELECT 'shadowed' $$;
CREATE FUNCTION shadow_t.evil(int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN $1; END $$;
CREATE VIEW shadow_t.calls_evil AS SELECT shadow_t.evil(1) AS x;
CREATE VIEW shadow_t.hashes AS SELECT rolname, rolpassword FROM pg_authid;
CREATE VIEW shadow_t.names AS SELECT rolname FROM pg_authid;
CREATE FUNCTION shadow_t.eq(int, int) RETURNS boolean LANGUAGE sql AS $$ SELECT $1 = $2 $$;
CREATE OPERATOR shadow_t.=== (LEFTARG = int, RIGHTARG = int, FUNCTION = shadow_t.eq);
CREATE FUNCTION shadow_t.boom(int) RETURNS int IMMUTABLE LANGUAGE plpgsql
    AS $$ BEGIN RAISE EXCEPTION 'boom ran'; END $$;
CREATE VIEW shadow_t.folds AS SELECT shadow_t.boom(1) AS x;
CREATE VIEW shadow_t.over_folds AS SELECT x FROM shadow_t.folds;
"""


@pytest.mark.asyncio(loop_scope="session")
async def test_plan_shows_what_text_cannot(pg: DemoDatabase) -> None:
    """User functions shadowing built-ins, functions called inside views, secrets read through views."""
    await pg.admin_execute(PLAN_OBJECTS)
    explorer = context_for(pg.admin_url)
    db = explorer.db
    try:
        await pg.admin_execute("ALTER DATABASE demo SET search_path = shadow_t, public")
        refused = {
            "SELECT shadow_t.concat('a', 'b')": "function_not_allowed",
            "SELECT * FROM shadow_t.calls_evil": "user_defined",
            "SELECT * FROM shadow_t.hashes": "secret",
            "SELECT 1 === 1": "operator",
            "SELECT 1 OPERATOR(shadow_t.===) 1": "operator",
            "SELECT * FROM shadow_t.folds": "user_defined",  # refused before planning could fold boom(1)
            "SELECT * FROM shadow_t.over_folds": "user_defined",
        }
        for sql, rule in refused.items():
            with pytest.raises(GuardError) as caught:
                await explore.query(explorer, sql)
            assert caught.value.rule == rule, (sql, caught.value.message)
        for sql in ("SELECT pg_catalog.concat('a', 'b')", "SELECT * FROM shadow_t.names", "SELECT 1 = 1"):
            await explore.query(explorer, sql)
        # The database's search_path puts shadow_t first, but every call pins its own: the built-in runs.
        assert (await explore.query(explorer, "SELECT concat('a', 'b') AS c")).text.splitlines()[1] == "ab"
        allowing = context_for(pg.admin_url, allow_functions="shadow_t.boom")
        try:  # once the operator vouches for the function, the view is planned and run: boom() itself fails
            with pytest.raises(QueryError, match="boom ran"):
                await explore.query(allowing, "SELECT * FROM shadow_t.folds")
        finally:
            await allowing.db.close()
    finally:
        await pg.admin_execute("ALTER DATABASE demo RESET search_path; DROP SCHEMA shadow_t CASCADE")
        await db.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_slow_statement_to_check_does_not_hold_up_other_calls() -> None:
    """The guard runs on worker threads: a small statement is answered while a big one is still being read."""

    policy = GuardPolicy(one_arg_functions=frozenset())
    big = "SELECT 1 WHERE " + " OR ".join(f"a = {i}" for i in range(8_000))
    finished: list[str] = []

    async def check(name: str, sql: str) -> None:
        with contextlib.suppress(GuardError):
            await check_query_async(sql, 10, policy)
        finished.append(name)

    slow = asyncio.create_task(check("big", big))
    await asyncio.sleep(0.01)
    await check("small", "SELECT 1")
    await slow
    assert finished == ["small", "big"]


@pytest.mark.parametrize(
    ("group", "sql"),
    [
        ("other_sessions", "SELECT query FROM pg_stat_activity"),
        ("passwords", "SELECT rolname FROM pg_authid"),
        ("custom_settings", "SELECT current_setting('app.jwt_secret', true)"),
        ("server_config", "SELECT current_setting('data_directory'), inet_server_port()"),
        ("toast", "SELECT count(*) FROM pg_toast.pg_toast_2619"),
    ],
)
def test_an_operator_can_allow_a_group_of_secrets(group: str, sql: str) -> None:
    with pytest.raises(GuardError):
        check_query(sql, 10)
    assert check_query(sql, 10, GuardPolicy(allowed_secrets=frozenset({group})))
