"""What the database layer alone stops: the guard corpus (tests/data) run with the guard bypassed.

Starts a throwaway PostgreSQL with the demo data and runs every attack of
tests/data/readonly_attacks.tsv straight through `Database.run_query` (read-only transaction, timeouts,
rollback, reset) as the least-privilege reader, then prints how many raised an error and which ran.
Nothing here is a pass/fail test: it shows why the guard must refuse the classes that still run.

Usage: python benchmarks/bench_session_layer.py
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from pg_mcp.config import load_settings
from pg_mcp.database.executor import Database
from pg_mcp.errors import PgMcpError
from pg_mcp.guard import CheckedQuery
from pg_mcp.local_pg import load_demo, start_local_postgres

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "data" / "readonly_attacks.tsv"


def attacks() -> list[str]:
    lines = CORPUS.read_text().splitlines()
    cases = [line.split("\t", 1)[1] for line in lines if line.strip() and not line.startswith("#")]
    return [case.replace("{NL}", "\n").replace("{NBSP}", "\u00a0") for case in cases]


async def measure(url: str) -> None:
    db = Database(load_settings({"database_url": url, "statement_timeout": 2}, dotenv=False))
    ran: list[str] = []
    cases = attacks()
    try:
        for sql in cases:
            statement = sql.rstrip().rstrip(";")
            wrapped = f"SELECT * FROM (\n{statement}\n) AS pg_mcp_result LIMIT 11"
            try:
                await db.run_query(CheckedQuery(statement=statement, sql=wrapped, max_rows=10))
                ran.append(sql)
            except PgMcpError:
                pass
    finally:
        await db.close()
    print(f"{len(cases)} attacks; the database layer alone raised an error for {len(cases) - len(ran)}")
    print(f"{len(ran)} ran (rolled back, bounded by the timeout unless uninterruptible):")
    for sql in ran:
        print("  " + sql.replace("\n", " ")[:110])


def main() -> None:
    with start_local_postgres() as cluster:
        url = asyncio.run(load_demo(cluster.url(), cluster.password))
        asyncio.run(measure(url))


if __name__ == "__main__":
    main()
