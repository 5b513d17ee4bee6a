"""How often a recursive CTE can recurse, read from PostgreSQL's own parse tree (pg_mcp.guard.recursion)."""

from __future__ import annotations

import pytest

from pg_mcp.guard import postgres_reading
from pg_mcp.guard.recursion import recursion_bounds

CASES = [
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10) SELECT sum(n) FROM r", (("r", 10),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT 1 + r.n FROM r WHERE 10 >= r.n) SELECT * FROM r", (("r", 10),)),
    ("WITH RECURSIVE r(n) AS (SELECT 0::bigint UNION ALL SELECT n + 2 FROM r WHERE n < 1e6) TABLE r", (("r", 500_001),)),
    ("WITH RECURSIVE r(n) AS (SELECT -5 UNION ALL SELECT n - 1 FROM r WHERE n > -20) TABLE r", (("r", 16),)),
    (
        "WITH RECURSIVE c AS (SELECT id, 1 AS depth FROM t UNION ALL SELECT t.id, c.depth + 1 FROM t "
        "JOIN c ON t.parent = c.id WHERE c.depth < 5 AND t.id > 0) TABLE c",
        (("c", 5),),
    ),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n > 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n * 2 FROM r WHERE n < 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT x FROM t UNION ALL SELECT n + 1 FROM r WHERE n < 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r WHERE n < 10 OR true) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT t.n + 1 FROM r, t WHERE t.n < 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE d AS (SELECT id FROM t UNION SELECT t.id FROM t JOIN d ON t.parent = d.id) TABLE d", ()),
    ("WITH RECURSIVE d AS (SELECT id FROM t UNION ALL SELECT t.id FROM t JOIN d ON t.parent = d.id) TABLE d", (("d", None),)),
    ("WITH RECURSIVE d AS (SELECT 1 AS x) TABLE d", ()),
    ("SELECT 1", ()),
    ("WITH RECURSIVE r(n) AS (SELECT 1e17::float8 UNION ALL SELECT n + 1 FROM r WHERE n < 1e17 + 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 1e17::float8 UNION ALL SELECT n + 1 FROM r WHERE n < 100000000000000010) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 0::public.int8 UNION ALL SELECT n + 1 FROM r WHERE n < 10) TABLE r", (("r", None),)),
    ("WITH RECURSIVE r(n) AS (SELECT 0::pg_catalog.int8 UNION ALL SELECT n + 1 FROM r WHERE n < 10) TABLE r", (("r", 11),)),
]  # fmt: skip


@pytest.mark.parametrize(("sql", "expected"), CASES)
def test_recursion_is_bounded_only_by_what_the_text_says(sql: str, expected: tuple[object, ...]) -> None:
    assert recursion_bounds(postgres_reading.parse(sql)["stmt"]) == expected
