"""The documented HAProxy recipe (docs/team-server.md), run as written against two real replicas: a replica killed with
SIGKILL under load costs no call (the load balancer retries read-only calls elsewhere)."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import signal
import subprocess
from pathlib import Path

import httpx2
import pytest
from conftest import DemoDatabase
from mcp_helpers import ROOT, server_env
from test_http import JSON_HEADERS, HttpServer

from pg_mcp.local_pg import free_port

pytestmark = pytest.mark.asyncio(loop_scope="session")


def readme_recipe(frontend: int, replicas: list[int]) -> str:
    """The documented configuration, with this test's ports in place of the example's."""
    text = (ROOT / "docs" / "team-server.md").read_text()
    match = re.search(r"```haproxy\n(.*?)```", text, re.S)
    assert match, "docs/team-server.md has an HAProxy recipe"
    config = match.group(1).replace("127.0.0.1:8080", f"127.0.0.1:{frontend}")
    for index, port in enumerate(replicas, start=1):
        config = config.replace(f"127.0.0.1:800{index}", f"127.0.0.1:{port}")
    return config


async def test_a_replica_killed_under_load_costs_no_call(pg: DemoDatabase, tmp_path: Path) -> None:
    haproxy = shutil.which("haproxy") or "/usr/sbin/haproxy"
    if not Path(haproxy).exists():
        pytest.fail("HAProxy is not installed (.ci/run installs it)")
    replicas = [HttpServer([pg.url], server_env(), tmp_path / f"replica{i}.log") for i in (1, 2)]
    frontend = free_port()
    config = tmp_path / "haproxy.cfg"
    config.write_text(readme_recipe(frontend, [r.port for r in replicas]))
    proxy = subprocess.Popen(
        [haproxy, "-db", "-f", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://127.0.0.1:{frontend}"
    answers: list[int] = []
    try:
        async with httpx2.AsyncClient(timeout=30) as http:
            for _ in range(100):  # both replicas pass their first health check
                await asyncio.sleep(0.1)
                try:
                    if (await http.get(f"{url}/healthz")).status_code == 200:
                        break
                except httpx2.HTTPError:
                    continue

            async def caller(n: int) -> None:
                for i in range(40):
                    body = {"jsonrpc": "2.0", "id": i, "method": "tools/call",
                            "params": {"name": "query", "arguments": {"sql": f"SELECT {n} + {i} AS v, pg_catalog.count(*) FROM hr.employees"}}}  # fmt: skip
                    try:  # a connection per call: what is tested is the retries, not keep-alive races
                        response = await http.post(
                            f"{url}/mcp",
                            content=json.dumps(body),
                            headers={**JSON_HEADERS, "connection": "close"},
                        )
                    except httpx2.HTTPError:
                        answers.append(-1)
                        continue
                    ok = response.status_code == 200 and not response.json().get("result", {}).get("isError")
                    answers.append(200 if ok else response.status_code)

            callers = [asyncio.create_task(caller(n)) for n in range(4)]
            while len(answers) < 30:
                await asyncio.sleep(0.01)
            replicas[0].proc.send_signal(signal.SIGKILL)
            await asyncio.gather(*callers)
    finally:
        proxy.terminate()
        proxy.wait(timeout=10)
        for replica in replicas:
            replica.stop()
    assert len(answers) == 160 and set(answers) == {200}, answers
