"""What each of the guard's two readings adds, over the attack corpus and the legitimate corpora.

For every statement of the attack corpus (tests/test_attacks.py's categories and
tests/data/readonly_attacks.tsv) and of the legitimate ones (tests/data/readonly_legit.sql and the
analyst queries), runs PostgreSQL's reading (libpg_query, `postgres_reading`) and sqlglot's reading
(`sqlglot_reading`) separately, in process, and prints:

- how many attacks each refuses, and how many only sqlglot refuses (with the rules and examples);
- whether either refuses a legitimate statement;
- the CPU each reading costs per statement (p50 over the corpus, best of 3 runs).

No database is needed: the readings are pure. Usage: python benchmarks/bench_guard_layers.py
"""

from __future__ import annotations

import collections
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import logging  # noqa: E402

from pg_mcp.errors import GuardError  # noqa: E402
from pg_mcp.guard import postgres_reading, sqlglot_reading  # noqa: E402
from pg_mcp.guard.input import check_input  # noqa: E402
from pg_mcp.guard.policy import GuardPolicy  # noqa: E402


def attacks() -> list[str]:
    from test_attacks import CATEGORIES

    statements = [case[1] for cases in CATEGORIES.values() for case in cases]
    for line in (ROOT / "tests/data/readonly_attacks.tsv").read_text().splitlines():
        if line and not line.startswith("#") and "\t" in line:
            statements.append(line.split("\t", 1)[1].replace("{NL}", "\n").replace("{NBSP}", "\u00a0"))
    return statements


def legitimate() -> list[str]:
    from test_analyst_queries import QUERIES

    lines = (ROOT / "tests/data/readonly_legit.sql").read_text().splitlines()
    return [line for line in lines if line.strip() and not line.startswith("--")] + [q[1] for q in QUERIES]


def refusal(read: Callable[[str], object], sql: str) -> str | None:
    try:
        read(sql)
    except GuardError as error:
        return str(error.rule)
    except Exception as error:  # a parser failure is a refusal too, as in the guard
        return f"parse:{type(error).__name__}"
    return None


def main() -> None:
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it warns about each statement it cannot classify
    policy = GuardPolicy()

    def postgres(sql: str) -> object:
        text = check_input(sql, policy)
        return postgres_reading.check(postgres_reading.parse(text)["stmt"], policy)

    def sqlglot(sql: str) -> object:
        sqlglot_reading.check(check_input(sql, policy), policy)
        return None

    bad, good = attacks(), legitimate()
    only_sqlglot: collections.Counter[str] = collections.Counter()
    examples: dict[str, str] = {}
    refused = {"postgres": 0, "sqlglot": 0}
    for sql in bad:
        by_postgres, by_sqlglot = refusal(postgres, sql), refusal(sqlglot, sql)
        refused["postgres"] += by_postgres is not None
        refused["sqlglot"] += by_sqlglot is not None
        if by_postgres is None and by_sqlglot is not None:
            only_sqlglot[by_sqlglot] += 1
            examples.setdefault(by_sqlglot, sql[:120])
    print(
        f"attacks: {len(bad)}; refused by PostgreSQL's reading {refused['postgres']}, by sqlglot's {refused['sqlglot']}"
    )
    print(f"refused only by sqlglot's reading: {sum(only_sqlglot.values())}")
    for rule, count in only_sqlglot.most_common():
        print(f"  {count:4}  {rule:<24} e.g. {examples[rule]!r}")
    for name, read in (("postgres", postgres), ("sqlglot", sqlglot)):
        wrong = [sql for sql in good if refusal(read, sql) is not None]
        print(f"legitimate statements refused by {name}'s reading: {len(wrong)} of {len(good)}")
    for name, read in (("postgres", postgres), ("sqlglot", sqlglot)):
        best: list[float] = []
        for _ in range(3):
            times = []
            for sql in good + bad:
                started = time.perf_counter()
                refusal(read, sql)
                times.append((time.perf_counter() - started) * 1000)
            best = times if not best or statistics.median(times) < statistics.median(best) else best
        print(
            f"CPU per statement, {name}'s reading: p50 {statistics.median(best):.3f} ms, total {sum(best):.0f} ms"
        )


if __name__ == "__main__":
    main()
