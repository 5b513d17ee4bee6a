"""Guard cost: typical statements (per call) and adversarial inputs at the length limit (whole check).

Run: .venv/bin/python benchmarks/bench_guard.py
Prints milliseconds; the adversarial ones must end within the guard's deadline (2 s) and mostly far below.
"""

from __future__ import annotations

import statistics
import time

from pg_mcp.errors import GuardError
from pg_mcp.guard import GuardPolicy, check_query

TYPICAL = {
    "pk_lookup": "SELECT * FROM sales.orders WHERE id = 42",
    "three_table_join": (
        "SELECT c.name, count(*) AS orders, sum(i.quantity * i.unit_price) AS revenue FROM sales.customers c "
        "JOIN sales.orders o ON o.customer_id = c.id JOIN sales.order_items i ON i.order_id = o.id "
        "WHERE o.created_at > now() - interval '30 days' GROUP BY c.name ORDER BY revenue DESC LIMIT 10"
    ),
    "cte_window": (
        "WITH monthly AS (SELECT date_trunc('month', created_at) AS m, sum(total) AS t FROM sales.orders "
        "GROUP BY 1) SELECT m, t, t - lag(t) OVER (ORDER BY m) AS change FROM monthly ORDER BY m"
    ),
}

ADVERSARIAL = {
    "nbsp_strings_10000": "SELECT " + ",".join(["'\u00a0'"] * 10_000),
    "operator_open_3000": "SELECT 1 " + "OPERATOR(" * 3_000,
    "nested_comments_deep": "SELECT 1 " + "/*" * 20_000 + "*/" * 20_000,
    "subscripts_99kb": "SELECT " + "+".join(["a" + "[1]" * 50] * 650),
    "many_columns": "SELECT " + ",".join(f"c{i}" for i in range(15_000)) + " FROM t",
    "long_in_list": "SELECT 1 WHERE x IN (" + ",".join(str(i) for i in range(20_000)) + ")",
    "deep_parentheses": "SELECT " + "(" * 10_000 + "1" + ")" * 10_000,
    "or_chain": "SELECT 1 WHERE " + " OR ".join(f"a = {i}" for i in range(8_000)),
    "concat_chain": "SELECT " + " || ".join(["'x'"] * 12_000),
}


def timed(sql: str, policy: GuardPolicy) -> tuple[float, str]:
    started = time.perf_counter()
    try:
        check_query(sql, 100, policy)
        outcome = "accepted"
    except GuardError as error:
        outcome = f"refused:{error.rule}"
    return (time.perf_counter() - started) * 1000, outcome


def main() -> None:
    policy = GuardPolicy(one_arg_functions=frozenset())
    print("typical statements (p50 / p95 of 500 runs, ms):")
    for name, sql in TYPICAL.items():
        samples = sorted(timed(sql, policy)[0] for _ in range(500))
        print(f"  {name:20s} {statistics.median(samples):7.3f} {samples[int(len(samples) * 0.95)]:7.3f}")
    print("adversarial inputs (ms, outcome):")
    for name, sql in ADVERSARIAL.items():
        elapsed, outcome = timed(sql[:100_000], policy)
        print(f"  {name:20s} {len(sql[:100_000]):7d} chars {elapsed:9.1f}  {outcome}")


if __name__ == "__main__":
    main()
