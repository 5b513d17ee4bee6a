"""The container image of the Containerfile, run by a container engine as docs/deployment.md says:
over HTTP with a token (health check, a tool call, refusals, SIGTERM), over stdio with `run -i`, the
demo, and deploy/compose.yaml (two replicas behind HAProxy, through PgBouncer).

These tests run only when PG_MCP_CONTAINER_IMAGE names a built image; `.ci/container` builds the
images with podman and runs this file. The containers use the host's network (`--network host`),
where the test database listens on 127.0.0.1.

    PG_MCP_CONTAINER_IMAGE           the default target (the server)
    PG_MCP_CONTAINER_DEMO_IMAGE      the `demo` target; the demo test is skipped without it
    PG_MCP_CONTAINER_ENGINE          podman (default) or docker
    PG_MCP_CONTAINER_COMPOSE         a compose command (e.g. podman-compose), with
    PG_MCP_CONTAINER_PGBOUNCER_IMAGE deploy/pgbouncer built, and
    PG_MCP_CONTAINER_HAPROXY_IMAGE   an HAProxy image; the compose test is skipped without them
"""

from __future__ import annotations

import json
import os
import queue
import re
import secrets
import shlex
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import httpx2
import pytest
from conftest import DemoDatabase
from mcp_helpers import ROOT

from pg_mcp.local_pg import free_port

IMAGE = os.environ.get("PG_MCP_CONTAINER_IMAGE", "")
DEMO_IMAGE = os.environ.get("PG_MCP_CONTAINER_DEMO_IMAGE", "")
ENGINE = os.environ.get("PG_MCP_CONTAINER_ENGINE", "podman")
COMPOSE = os.environ.get("PG_MCP_CONTAINER_COMPOSE", "")
PGBOUNCER_IMAGE = os.environ.get("PG_MCP_CONTAINER_PGBOUNCER_IMAGE", "")
HAPROXY_IMAGE = os.environ.get("PG_MCP_CONTAINER_HAPROXY_IMAGE", "")

pytestmark = pytest.mark.skipif(
    not IMAGE, reason="set PG_MCP_CONTAINER_IMAGE to a built image (.ci/container builds one and runs these)"
)

PREFIX = "pg-mcp-test-"  # every container and volume these tests make, removed by them
TOKENS = "/var/lib/pg-mcp/tokens.json"
JSON_HEADERS = {"accept": "application/json, text/event-stream", "content-type": "application/json"}
INIT = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "container-test", "version": "0"}}}  # fmt: skip
INITIALIZED = {"jsonrpc": "2.0", "method": "notifications/initialized"}
TOKEN = re.compile(r"pgmcp_[A-Za-z0-9_-]+")


def query(sql: str, request_id: int = 2) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "method": "tools/call",
            "params": {"name": "query", "arguments": {"sql": sql}}}  # fmt: skip


def engine(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [ENGINE, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"{ENGINE} {shlex.join(args)} exited {done.returncode}: {done.stderr[-2000:]}")
    return done


def remove(container: str) -> None:
    engine("rm", "-f", *(["--time", "2"] if ENGINE == "podman" else []), container, check=False)


def text_of(response: dict[str, Any]) -> str:
    """The text a tool call answered, or an assertion naming what came instead."""
    result = response.get("result")
    assert isinstance(result, dict) and not result.get("isError"), response
    return "\n".join(block.get("text", "") for block in result["content"])


def post(url: str, body: Any, token: str | None) -> httpx2.Response:
    headers = {**JSON_HEADERS, **({"authorization": f"Bearer {token}"} if token else {})}
    return httpx2.post(f"{url}/mcp", content=json.dumps(body), headers=headers, timeout=30)


def add_token(volume: str) -> str:
    """`pg-mcp token add` run by the image itself, into a named volume, as docs/deployment.md does it."""
    made = engine("run", "--rm", "--no-healthcheck", "-v", f"{volume}:/var/lib/pg-mcp", IMAGE,
                  "token", "add", "ci", "--file", TOKENS)  # fmt: skip
    found = TOKEN.search(made.stdout)
    assert found, made.stdout + made.stderr
    return found.group(0)


class HttpContainer:
    """The image run as its default command (`pg-mcp serve --transport http`), detached."""

    def __init__(self, database_url: str) -> None:
        self.name = f"{PREFIX}http"
        self.volume = f"{PREFIX}tokens"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        remove(self.name)
        engine("volume", "rm", "-f", self.volume, check=False)
        engine("volume", "create", self.volume)
        self.token = add_token(self.volume)
        engine(
            "run", "-d", "--name", self.name, "--network", "host", "-v", f"{self.volume}:/var/lib/pg-mcp",
            "-e", f"DATABASE_URL={database_url}", "-e", f"PG_MCP_PORT={self.port}",
            "-e", f"PG_MCP_AUTH_TOKENS_FILE={TOKENS}", IMAGE,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx2.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx2.HTTPError:
                pass
            if engine("inspect", "-f", "{{.State.Running}}", self.name).stdout.strip() != "true":
                break
            time.sleep(0.2)
        raise AssertionError(f"the container did not start: {self.logs()}")

    def logs(self) -> str:
        done = engine("logs", self.name, check=False)
        return done.stdout + done.stderr

    def remove(self) -> None:
        remove(self.name)
        engine("volume", "rm", "-f", self.volume, check=False)


@pytest.fixture(scope="module")
def server(pg: DemoDatabase) -> Iterator[HttpContainer]:
    container = HttpContainer(pg.url)
    try:
        yield container
    finally:
        container.remove()


def test_the_image_runs_the_http_server_as_an_unprivileged_user() -> None:
    image = json.loads(engine("image", "inspect", IMAGE).stdout)[0]
    config = image["Config"]
    assert config["User"] == "10001:10001"
    assert config["Entrypoint"] == ["pg-mcp"] and config["Cmd"] == ["serve", "--transport", "http"]
    assert "PG_MCP_HOST=0.0.0.0" in config["Env"]
    healthcheck = config.get("Healthcheck") or image.get("Healthcheck")  # docker's place, podman's
    assert healthcheck and "/healthz" in " ".join(healthcheck["Test"]), "an OCI-format build drops it"
    who = engine("run", "--rm", "--no-healthcheck", "--entrypoint", "id", IMAGE, "-u").stdout.strip()
    assert who == "10001"


def test_a_public_bind_without_a_token_is_refused_at_start(pg: DemoDatabase) -> None:
    done = engine(
        "run", "--rm", "--no-healthcheck", "--network", "host", "-e", f"DATABASE_URL={pg.url}",
        "-e", f"PG_MCP_PORT={free_port()}", IMAGE, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "Refusing to serve 0.0.0.0 without authentication" in done.stderr


def test_the_health_check_passes(server: HttpContainer) -> None:
    if ENGINE == "podman":
        checked = engine("healthcheck", "run", server.name, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr
    else:  # docker runs the image's HEALTHCHECK on its own schedule: the first one within 30 s
        deadline = time.monotonic() + 45
        status = ""
        while time.monotonic() < deadline and status != "healthy":
            time.sleep(1)
            status = engine("inspect", "-f", "{{.State.Health.Status}}", server.name).stdout.strip()
        assert status == "healthy"


def test_a_token_holder_calls_a_tool_over_http(server: HttpContainer) -> None:
    initialized = post(server.url, INIT, server.token)
    assert initialized.status_code == 200, initialized.text
    assert initialized.json()["result"]["serverInfo"]["name"] == "pg-mcp"
    answer = post(server.url, query("SELECT 1 AS one"), server.token)
    assert answer.status_code == 200 and text_of(answer.json()).splitlines()[1] == "1"
    ready = httpx2.get(f"{server.url}/readyz", headers={"authorization": f"Bearer {server.token}"})
    assert ready.json() == {"status": "ready", "databases": ["demo"]}
    assert '"principal": "ci"' in server.logs(), "the audit line names the token"


def test_calls_without_the_token_are_refused(server: HttpContainer) -> None:
    missing = post(server.url, query("SELECT 1"), None)
    wrong = post(server.url, query("SELECT 1"), "pgmcp_not-a-token")
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert wrong.status_code == 401


def test_sigterm_alone_stops_the_container_cleanly(server: HttpContainer) -> None:
    """Only SIGTERM is sent (no stop timeout escalates to SIGKILL): the container ends, with status 0,
    only if the server stops on it by itself."""
    assert post(server.url, query("SELECT 1"), server.token).status_code == 200
    engine("kill", "--signal", "TERM", server.name)
    code = engine("wait", server.name, timeout=60).stdout.strip()
    assert code == "0", server.logs()
    assert "Finished server process" in server.logs()


class Stdio:
    """A container whose stdin and stdout carry MCP, as an MCP host runs `docker run -i`."""

    def __init__(self, args: list[str]) -> None:
        self.proc = subprocess.Popen(
            [ENGINE, "run", "-i", "--rm", "--no-healthcheck", *args],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        self.lines: queue.Queue[str] = queue.Queue()
        self.stderr: list[str] = []
        assert self.proc.stdout is not None and self.proc.stderr is not None
        threading.Thread(target=self._read, args=(self.proc.stdout, self.lines.put), daemon=True).start()
        threading.Thread(target=self._read, args=(self.proc.stderr, self.stderr.append), daemon=True).start()

    @staticmethod
    def _read(stream: IO[str], put: Any) -> None:
        for line in stream:
            put(line)

    def send(self, *messages: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        for message in messages:
            self.proc.stdin.write(json.dumps(message) + "\n")
        self.proc.stdin.flush()

    def answer(self, request_id: int, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            try:
                message: dict[str, Any] = json.loads(self.lines.get(timeout=left))
            except queue.Empty:
                break
            if message.get("id") == request_id:
                return message
        raise AssertionError(
            f"no answer to request {request_id} in {timeout} s: {''.join(self.stderr)[-3000:]}"
        )

    def close(self, timeout: float) -> int:
        """End of input, as when the host quits: the exit status."""
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def test_stdio_with_run_i(pg: DemoDatabase) -> None:
    session = Stdio(["--network", "host", "-e", f"DATABASE_URL={pg.url}", IMAGE, "serve"])
    try:
        session.send(INIT, INITIALIZED, query("SELECT count(*) AS n FROM hr.employees"))
        assert session.answer(1, 60)["result"]["serverInfo"]["name"] == "pg-mcp"
        assert text_of(session.answer(2, 60)).splitlines()[1] == "300"
    finally:
        code = session.close(30)
    assert code == 0, "".join(session.stderr)[-3000:]


@pytest.mark.skipif(not DEMO_IMAGE, reason="set PG_MCP_CONTAINER_DEMO_IMAGE to the demo target")
def test_the_demo_with_run_i() -> None:
    session = Stdio([DEMO_IMAGE])  # the image's own command: pg-mcp demo, no network needed
    try:
        session.send(INIT, INITIALIZED)
        assert session.answer(1, 60)["result"]["serverInfo"]["name"] == "pg-mcp", "answered while it builds"
        for request_id in range(2, 200):  # a call while the database is built says so: the client retries
            session.send(query("SELECT count(*) AS n FROM hr.employees", request_id))
            answer = session.answer(request_id, 180)
            if "still being built" not in json.dumps(answer):
                break
            time.sleep(1)
        assert text_of(answer).splitlines()[1] == "300"
    finally:
        code = session.close(60)
    assert code == 0, "".join(session.stderr)[-3000:]
    assert "Demo database ready" in "".join(session.stderr)


#: The compose check's own PostgreSQL, as a service beside the example's: the demo image has the
#: server binaries. It makes the role and a table of five rows, then listens on the compose network.
DB_SCRIPT = r"""set -eu
bin="$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)"
data="$(mktemp -d)/data"
printf '%s\n' "$DB_ADMIN_PASSWORD" > /tmp/pw
"$bin/initdb" -D "$data" -U postgres --pwfile=/tmp/pw --auth=scram-sha-256 -E UTF8 --locale=C --no-sync >/dev/null
rm /tmp/pw
echo "host all all 0.0.0.0/0 scram-sha-256" >> "$data/pg_hba.conf"
"$bin/pg_ctl" -D "$data" -w -l /tmp/setup.log -o "-c listen_addresses='' -k /tmp" start >/dev/null
PGPASSWORD="$DB_ADMIN_PASSWORD" "$bin/psql" -qX -v ON_ERROR_STOP=1 -h /tmp -U postgres -d postgres <<SQL
CREATE ROLE $DB_USER LOGIN PASSWORD '$DB_PASSWORD';
GRANT SET ON PARAMETER log_min_messages TO $DB_USER;
CREATE DATABASE $DB_NAME;
\c $DB_NAME
CREATE TABLE items AS SELECT g AS id FROM generate_series(1, 5) AS g;
GRANT SELECT ON items TO $DB_USER;
SQL
"$bin/pg_ctl" -D "$data" -w stop >/dev/null
exec "$bin/postgres" -D "$data" -c listen_addresses='*' -k /tmp -c fsync=off
"""

COMPOSE_PROJECT = "pgmcp-compose-test"


@pytest.mark.skipif(
    not (COMPOSE and DEMO_IMAGE and PGBOUNCER_IMAGE and HAPROXY_IMAGE),
    reason="set PG_MCP_CONTAINER_COMPOSE and the demo, PgBouncer and HAProxy images",
)
def test_the_compose_example_serves_through_haproxy_and_pgbouncer(tmp_path: Path) -> None:
    (tmp_path / "db.sh").write_text(DB_SCRIPT)
    (tmp_path / "db.sh").chmod(0o644)
    (tmp_path / "ci.yaml").write_text(
        f"""services:
  db:
    image: {DEMO_IMAGE}
    entrypoint: ["sh", "/ci/db.sh"]
    healthcheck:
      disable: true
    environment:
      DB_ADMIN_PASSWORD: {secrets.token_hex(12)}
      DB_NAME: shop
      DB_USER: mcp_reader
      DB_PASSWORD: ${{DB_PASSWORD}}
    volumes:
      - {tmp_path / "db.sh"}:/ci/db.sh:ro
  pgbouncer:
    depends_on: [db]
"""
    )
    port = free_port()
    env = {
        **os.environ,
        "PG_MCP_IMAGE": IMAGE, "PGBOUNCER_IMAGE": PGBOUNCER_IMAGE, "HAPROXY_IMAGE": HAPROXY_IMAGE,
        "DB_HOST": "db", "DB_NAME": "shop", "DB_USER": "mcp_reader", "DB_PASSWORD": secrets.token_hex(12),
        "PG_MCP_PUBLISH": f"127.0.0.1:{port}",
    }  # fmt: skip
    base = [*shlex.split(COMPOSE), "-p", COMPOSE_PROJECT, "-f", str(ROOT / "deploy" / "compose.yaml"),
            "-f", str(tmp_path / "ci.yaml")]  # fmt: skip

    def compose(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [*base, *args], capture_output=True, text=True, env=env, timeout=timeout, check=False,
            stdin=subprocess.DEVNULL, cwd=ROOT / "deploy",
        )  # fmt: skip
        assert done.returncode == 0, f"compose {shlex.join(args)}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
        return done

    def container(service: str) -> str:
        return f"{COMPOSE_PROJECT}_{service}_1"

    def replica_logs(service: str) -> str:
        return engine("logs", container(service)).stderr

    url = f"http://127.0.0.1:{port}"
    try:
        made = compose("run", "--rm", "--no-deps", "pg-mcp-1", "token", "add", "ci")
        found = TOKEN.search(made.stdout)
        assert found, made.stdout
        token = found.group(0)
        compose("up", "-d", "--no-build")
        deadline = time.monotonic() + 90
        status = 0
        while time.monotonic() < deadline and status != 200:
            time.sleep(0.5)
            try:
                status = post(url, INIT, token).status_code
            except httpx2.HTTPError:
                continue
        assert status == 200, engine("logs", container("haproxy"), check=False).stderr[-2000:]
        answered: set[str] = set()
        for i in range(60):  # HAProxy spreads the calls over both replicas once both pass its check
            answer = post(url, query("SELECT count(*) AS n FROM items", i), token)
            assert answer.status_code == 200 and text_of(answer.json()).splitlines()[1] == "5"
            answered = {r for r in ("pg-mcp-1", "pg-mcp-2") if '"principal": "ci"' in replica_logs(r)}
            if len(answered) == 2:
                break
            time.sleep(0.5)
        assert answered == {"pg-mcp-1", "pg-mcp-2"}, f"only {answered} answered"
        assert post(url, query("SELECT 1"), None).status_code == 401
        engine("stop", "-t", "20", container("pg-mcp-1"))
        after = post(url, query("SELECT count(*) AS n FROM items", 9), token)
        assert after.status_code == 200 and text_of(after.json()).splitlines()[1] == "5", (
            "the other replica answers"
        )
    finally:
        subprocess.run(
            [*base, "down", "-v", "-t", "20"], capture_output=True, env=env, timeout=180, check=False,
            cwd=ROOT / "deploy",
        )  # fmt: skip
        engine("network", "rm", "-f", f"{COMPOSE_PROJECT}_default", check=False)
