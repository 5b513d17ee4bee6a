"""Peak memory of `Database.run_query` plus rendering for results that used to grow without bound.

Each case runs in a fresh child process, which prints how far its peak resident memory (VmHWM)
rose above what it was after connecting, with the rows fetched and how the result was cut:
- 550 columns of `repeat(chr(128512), 1000)` (1,000 four-byte characters each), max_rows=1000;
- a million rows of small values, and a million rows of 900-character text, max_rows=1000.

Usage: python benchmarks/bench_memory.py [--url postgresql://...]   (default: a throwaway local
PostgreSQL; needs its server binaries). Linux only (reads /proc/self/status).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys

from measure import status_kib

from pg_mcp.config import load_settings
from pg_mcp.database.executor import Database
from pg_mcp.guard import CheckedQuery
from pg_mcp.local_pg import start_local_postgres
from pg_mcp.render.results import render_result
from pg_mcp.render.values import Limits

EMOJI = ", ".join(f"repeat(chr(128512), 1000) AS c{i}" for i in range(550))
CASES = {
    "550 emoji columns x 1000 rows": f"SELECT {EMOJI} FROM generate_series(1, 1000)",
    "1M rows of (int, md5)": "SELECT g, md5(g::text) FROM generate_series(1, 1000000) AS g",
    "1M rows of 900-char text": "SELECT g, repeat('x', 900) AS a FROM generate_series(1, 1000000) AS g",
}
MAX_ROWS = 1000


async def _measure(url: str, sql: str) -> dict[str, object]:
    """One case in this process: peak RSS growth over fetching and rendering it."""
    settings = load_settings({"database_url": url, "pool_min": 1, "pool_max": 1}, dotenv=False)
    database = Database(settings)
    try:
        await database.run_query(CheckedQuery(statement="SELECT 1", sql="SELECT 1", max_rows=1))
        baseline = status_kib("self", "VmRSS")
        result = await database.run_query(CheckedQuery(statement=sql, sql=sql, max_rows=MAX_ROWS))
        limits = Limits(settings.max_cell_chars, settings.max_result_bytes)
        rendered = render_result(result, MAX_ROWS, limits, settings.max_rows_limit)
        return {
            "peak_growth_mib": round((status_kib("self", "VmHWM") - baseline) / 1024, 1),
            "rows": len(result.rows),
            "byte_cut": result.byte_cut,
            "text_bytes": len(rendered.text.encode()),
            "note": rendered.text.splitlines()[-1][:90],
        }
    finally:
        await database.close()


def _run_all(url: str) -> None:
    print(f"{'case':34} {'peak RSS growth':>16} {'rows':>6} {'text bytes':>11}  note")
    for name in CASES:
        child = subprocess.run(
            [sys.executable, __file__, "--url", url, "--case", name],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(child.stdout)
        print(
            f"{name:34} {r['peak_growth_mib']:>12.1f} MiB {r['rows']:>6} {r['text_bytes']:>11,}  {r['note']}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", help="an existing PostgreSQL (any role that can SELECT)")
    parser.add_argument("--case", choices=sorted(CASES), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:
        print(json.dumps(asyncio.run(_measure(args.url, CASES[args.case]))))
    elif args.url:
        _run_all(args.url)
    else:
        with start_local_postgres() as cluster:
            _run_all(cluster.url())


if __name__ == "__main__":
    main()
