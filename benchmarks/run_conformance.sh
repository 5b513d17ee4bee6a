#!/usr/bin/env bash
# run_conformance.sh: run the official MCP conformance suite's SERVER scenarios
# (@modelcontextprotocol/conformance, from the npm registry) against pg-mcp over Streamable HTTP.
#
# What it does, in order:
#   1. finds node >= 22 (the suite needs it): `node` on PATH, else /tmp/node22 (from
#      `npm install node@22`), else it runs `npm install node@22` into $WORK/node22;
#   2. `npm install @modelcontextprotocol/conformance@$CONF_VERSION` into $WORK/conformance;
#   3. starts a throwaway PostgreSQL with the demo data (pg_mcp.local_pg.start_local_postgres +
#      load_demo) in a small Python process that writes the reader URL and sleeps until SIGTERM
#      (the context manager then removes the cluster);
#   4. runs `conformance server --url http://127.0.0.1:PORT/mcp --suite all` against
#        default   pg-mcp serve --transport http (loopback, no auth, default limits)
#        raised    the same with --principal-rate 1000 --principal-concurrency 64
#                  --max-concurrent-calls 256 (so the per-principal limits do not mask results)
#        token     raised limits plus --auth-tokens-file (a token from `pg-mcp token add`).
#                  The suite's server mode has no way to send headers (no flag, no env var: it
#                  builds `new StreamableHTTPClientTransport(new URL(url))`), so it is pointed at a
#                  tiny stdlib TCP proxy that adds `Authorization: Bearer <token>` (and keeps the
#                  client's Host/Origin, so dns-rebinding-protection still tests pg-mcp). One
#                  direct, header-less server-initialize run shows the 401.
#   5. a curl probe: 8 idle `GET /mcp` SSE streams (what the TypeScript client opens after
#      initialize) and then a ping, against default limits;
#   6. prints one table: scenario, status per run, the expected classification for pg-mcp
#      (pass / n/a, with the reason) and the first failing check's message. Raw results are in
#      $WORK/results/<run>/server-<scenario>-<time>/checks.json.
#
# Usage:   benchmarks/run_conformance.sh            (from anywhere; about 1 minute once installed)
# Env:     WORK (default /tmp/pg-mcp-conformance), CONF_VERSION (default 0.1.16, the version
#          this was written against), BASE_PORT (default 18800; uses BASE_PORT..BASE_PORT+3).
# Exit:    0 when every scenario matched its expected classification, 1 otherwise (with pg-mcp's
#          default limits it is 1: that run gets HTTP 429 for many scenarios, shown as "429").
# It starts only its own processes and stops them (by pid) on exit; it edits nothing in the repo.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${WORK:-/tmp/pg-mcp-conformance}
CONF_VERSION=${CONF_VERSION:-0.1.16}
BASE_PORT=${BASE_PORT:-18800}
PY="$ROOT/.venv/bin/python"
PGMCP="$ROOT/.venv/bin/pg-mcp"
mkdir -p "$WORK"
rm -rf "$WORK/results" && mkdir -p "$WORK/results" "$WORK/logs"

PIDS=()      # servers and the proxy, stopped first
PG_PID=""    # the PostgreSQL holder, stopped last (it removes the cluster)
cleanup() {
    local pid
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null || true; done
    if [ -n "$PG_PID" ]; then kill -TERM "$PG_PID" 2>/dev/null || true; wait "$PG_PID" 2>/dev/null || true; fi
}
trap cleanup EXIT

# --- 1. node >= 22 ----------------------------------------------------------------------------
node_major() { "$1" --version 2>/dev/null | sed -E 's/^v([0-9]+).*/\1/'; }
if command -v node >/dev/null && [ "$(node_major node)" -ge 22 ] 2>/dev/null; then
    NODE_BIN=$(dirname "$(command -v node)")
elif [ -x /tmp/node22/node_modules/.bin/node ]; then
    NODE_BIN=/tmp/node22/node_modules/.bin
else
    mkdir -p "$WORK/node22"
    (cd "$WORK/node22" && npm install --no-audit --no-fund node@22 >/dev/null)
    NODE_BIN="$WORK/node22/node_modules/.bin"
fi
export PATH="$NODE_BIN:$PATH"
echo "node $(node --version), npm $(npm --version)"

# --- 2. the conformance suite -----------------------------------------------------------------
CONF_DIR="$WORK/conformance"
mkdir -p "$CONF_DIR"
if [ "$(cd "$CONF_DIR" && node -p "require('@modelcontextprotocol/conformance/package.json').version" 2>/dev/null)" != "$CONF_VERSION" ]; then
    (cd "$CONF_DIR" && { [ -f package.json ] || npm init -y >/dev/null; } &&
        npm install --no-audit --no-fund "@modelcontextprotocol/conformance@$CONF_VERSION" >/dev/null)
fi
CONF="$CONF_DIR/node_modules/.bin/conformance"
echo "conformance $("$CONF" --version)"

# --- helpers: the PostgreSQL holder and the header-adding proxy ----------------------------------
cat > "$WORK/pg_hold.py" <<'EOF'
"""Start a throwaway PostgreSQL with the pg-mcp demo data, write the reader URL to argv[1], sleep
until SIGTERM; the context manager then stops the server and removes the cluster."""
import asyncio, signal, sys, time
from pg_mcp import local_pg

def stop(*_):
    raise SystemExit(0)

signal.signal(signal.SIGTERM, stop)
with local_pg.start_local_postgres() as cluster:
    url = asyncio.run(local_pg.load_demo(cluster.url(), cluster.password))
    with open(sys.argv[1] + ".tmp", "w") as f:
        f.write(url + "\n")
    import os; os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    while True:
        time.sleep(3600)
EOF

cat > "$WORK/auth_proxy.py" <<'EOF'
"""listen_port upstream_port token: a loopback TCP proxy that adds `Authorization: Bearer token`
to each request (one request per connection: it also sets `Connection: close`) and otherwise
passes bytes through unchanged, Host and Origin included."""
import asyncio, sys

LISTEN, UPSTREAM, TOKEN = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]

async def pipe(reader, writer):
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, asyncio.CancelledError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass

async def handle(creader, cwriter):
    try:
        head = await creader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
        cwriter.close()
        return
    lines = head[:-4].split(b"\r\n")
    kept = [l for l in lines[1:] if not l.lower().startswith((b"authorization:", b"connection:"))]
    head = b"\r\n".join([lines[0], *kept, b"Authorization: Bearer " + TOKEN.encode(),
                         b"Connection: close"]) + b"\r\n\r\n"
    ureader, uwriter = await asyncio.open_connection("127.0.0.1", UPSTREAM)
    uwriter.write(head)
    await asyncio.gather(pipe(creader, uwriter), pipe(ureader, cwriter))

async def main():
    server = await asyncio.start_server(handle, "127.0.0.1", LISTEN)
    async with server:
        await server.serve_forever()

asyncio.run(main())
EOF

wait_http() {  # url: until /healthz answers (at most 30 s)
    for _ in $(seq 150); do
        curl -s -m 1 -o /dev/null "$1/healthz" && return 0
        sleep 0.2
    done
    echo "no answer from $1" >&2
    return 1
}

serve() {  # name port args...: start pg-mcp serve in the background, record its pid
    local name=$1 port=$2
    shift 2
    "$PGMCP" serve --transport http --host 127.0.0.1 --port "$port" --shutdown-grace 1 \
        --log-format text "$@" "$READER_URL" >"$WORK/logs/serve-$name.log" 2>&1 &
    PIDS+=($!)
    wait_http "http://127.0.0.1:$port"
}

run_suite() {  # name url: every server scenario (--suite all), results in $WORK/results/name
    echo "== conformance server --suite all ($1) against $2"
    (cd "$CONF_DIR" && "$CONF" server --url "$2" --suite all -o "$WORK/results/$1" \
        >"$WORK/logs/conformance-$1.log" 2>&1) || true
    sed -n '/=== SUMMARY ===/,$p' "$WORK/logs/conformance-$1.log" | tail -1
}

# --- 3. PostgreSQL with the demo data ---------------------------------------------------------
rm -f "$WORK/reader_url"
(cd "$ROOT" && exec "$PY" "$WORK/pg_hold.py" "$WORK/reader_url") >"$WORK/logs/pg.log" 2>&1 &
PG_PID=$!
for _ in $(seq 300); do [ -s "$WORK/reader_url" ] && break; sleep 0.2; done
[ -s "$WORK/reader_url" ] || { echo "PostgreSQL did not come up:"; cat "$WORK/logs/pg.log"; exit 1; }
READER_URL=$(cat "$WORK/reader_url")

# --- 4. the runs --------------------------------------------------------------------------------
RAISED=(--principal-rate 1000 --principal-concurrency 64 --max-concurrent-calls 256)
P_DEFAULT=$BASE_PORT P_RAISED=$((BASE_PORT + 1)) P_TOKEN=$((BASE_PORT + 2)) P_PROXY=$((BASE_PORT + 3))

serve default "$P_DEFAULT"
serve raised "$P_RAISED" "${RAISED[@]}"
rm -f "$WORK/tokens.json"
TOKEN=$("$PGMCP" token add conformance --file "$WORK/tokens.json" 2>/dev/null)
serve token "$P_TOKEN" "${RAISED[@]}" --auth-tokens-file "$WORK/tokens.json"
"$PY" "$WORK/auth_proxy.py" "$P_PROXY" "$P_TOKEN" "$TOKEN" >"$WORK/logs/proxy.log" 2>&1 &
PIDS+=($!)
wait_http "http://127.0.0.1:$P_PROXY"

run_suite default "http://127.0.0.1:$P_DEFAULT/mcp"
run_suite raised "http://127.0.0.1:$P_RAISED/mcp"
echo "== server-initialize against the token server without a token (expect a 401 failure)"
(cd "$CONF_DIR" && "$CONF" server --url "http://127.0.0.1:$P_TOKEN/mcp" --scenario server-initialize \
    -o "$WORK/results/token-noheader" >"$WORK/logs/conformance-token-noheader.log" 2>&1) || true
"$PY" -c 'import glob, json, sys
for f in glob.glob(sys.argv[1] + "/*/checks.json"):
    for c in json.load(open(f)):
        print("  ", c["status"], c.get("errorMessage", ""))' "$WORK/results/token-noheader"
run_suite token "http://127.0.0.1:$P_PROXY/mcp"

# --- 5. idle GET streams against the default limits --------------------------------------------
echo "== probe: 8 idle GET /mcp SSE streams, then a ping (default --principal-concurrency 8)"
sleep 3  # let the default server's token bucket refill after its suite run
GETS=()
for _ in $(seq 8); do
    curl -s -m 6 -o /dev/null -H 'Accept: text/event-stream' "http://127.0.0.1:$P_DEFAULT/mcp" &
    GETS+=($!)
done
sleep 1
curl -s -m 3 -o /dev/null -w 'ping while 8 GET streams are open: HTTP %{http_code}\n' \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -H 'mcp-protocol-version: 2025-11-25' -d '{"jsonrpc":"2.0","id":1,"method":"ping"}' \
    "http://127.0.0.1:$P_DEFAULT/mcp" || true
for pid in "${GETS[@]}"; do wait "$pid" 2>/dev/null || true; done

# --- 6. the table -------------------------------------------------------------------------------
"$PY" - "$WORK/results" <<'EOF'
import glob, json, os, sys

results = sys.argv[1]
RUNS = ["default", "raised", "token"]
# What pg-mcp should get, given what it implements (tools query/list_schemas/...; prompts
# explore_database/answer_question; resources postgres://...; no logging, subscriptions,
# sampling, elicitation, progress; stateless HTTP with JSON responses, so no session id).
NA_TOOL = "n/a: needs the reference server's tool {}"
EXPECTED = {
    "server-initialize": ("pass", ""),
    "ping": ("pass", ""),
    "tools-list": ("pass", ""),
    "resources-list": ("pass", ""),
    "prompts-list": ("pass", ""),
    "dns-rebinding-protection": ("pass", ""),
    "completion-complete": ("pass*", "asks completions for the reference prompt test_prompt_with_arguments; pg-mcp answers values: [] (checks shape only)"),
    "tools-call-simple-text": ("pass*", "vacuous: test_simple_text is unknown, the 'Unknown tool' error text satisfies the check"),
    "tools-call-error": ("pass*", "vacuous: test_error_handling is unknown, and the unknown-tool error is isError: true"),
    "logging-set-level": ("n/a", "pg-mcp does not declare the logging capability; -32601 is correct"),
    "tools-call-with-logging": ("n/a", "needs logging (logging/setLevel) and tool test_tool_with_logging"),
    "resources-subscribe": ("n/a", "pg-mcp declares resources.subscribe: false; -32601 is correct"),
    "resources-unsubscribe": ("n/a", "pg-mcp declares resources.subscribe: false; -32601 is correct"),
    "tools-call-image": ("n/a", NA_TOOL.format("test_image_content")),
    "tools-call-audio": ("n/a", NA_TOOL.format("test_audio_content")),
    "tools-call-embedded-resource": ("n/a", NA_TOOL.format("test_embedded_resource")),
    "tools-call-mixed-content": ("n/a", NA_TOOL.format("test_multiple_content_types")),
    "tools-call-with-progress": ("n/a", NA_TOOL.format("test_tool_with_progress") + " (pg-mcp sends no progress)"),
    "tools-call-sampling": ("n/a", NA_TOOL.format("test_sampling") + " (pg-mcp never samples)"),
    "tools-call-elicitation": ("n/a", NA_TOOL.format("test_elicitation") + " (pg-mcp never elicits)"),
    "elicitation-sep1034-defaults": ("n/a", "needs elicitation (tool test_elicitation_sep1034_defaults)"),
    "elicitation-sep1330-enums": ("n/a", "needs elicitation (tool test_elicitation_sep1330_enums)"),
    "json-schema-2020-12": ("n/a", NA_TOOL.format("json_schema_2020_12_tool")),
    "resources-read-text": ("n/a", "needs the reference resource test://static-text"),
    "resources-read-binary": ("n/a", "needs the reference resource test://static-binary"),
    "resources-templates-read": ("n/a", "needs the reference template test://template/{id}/data"),
    "prompts-get-simple": ("n/a", "needs the reference prompt test_simple_prompt"),
    "prompts-get-with-args": ("n/a", "needs the reference prompt test_prompt_with_arguments"),
    "prompts-get-embedded-resource": ("n/a", "needs the reference prompt test_prompt_with_embedded_resource"),
    "prompts-get-with-image": ("n/a", "needs the reference prompt test_prompt_with_image"),
    "server-sse-polling": ("skip", "stateless JSON-response server: no session id, no SSE; the suite only warns (and needs tool test_reconnection)"),
    "server-sse-multiple-streams": ("skip", "stateless server: no session id; the suite only warns"),
}

def load(run):
    out = {}
    for path in glob.glob(os.path.join(results, run, "server-*", "checks.json")):
        name = os.path.basename(os.path.dirname(path))[len("server-"):].rsplit("-", 6)[0]
        checks = json.load(open(path))
        failed = [c for c in checks if c.get("status") == "FAILURE"]
        passed = [c for c in checks if c.get("status") == "SUCCESS"]
        msg = failed[0].get("errorMessage", "") if failed else ""
        status = "FAIL" if failed else ("pass" if passed else "skip")
        if any("too many requests" in (c.get("errorMessage") or "") or "got 429" in (c.get("errorMessage") or "")
               for c in failed):
            status = "429"  # refused by pg-mcp's per-principal limits, the scenario never ran

        out[name] = (status, msg)
    return out

data = {run: load(run) for run in RUNS}
names = sorted(set().union(*data.values()) | set(EXPECTED), key=lambda n: list(EXPECTED).index(n) if n in EXPECTED else 999)
unexpected = 0
print()
print(f"{'scenario':32} {'default':8} {'raised':8} {'token':8} {'expected':9} notes / first failure")
for name in names:
    exp, why = EXPECTED.get(name, ("?", "new scenario"))
    row = [data[r].get(name, ("-", ""))[0] for r in RUNS]
    ok_status = {"pass": "pass", "pass*": "pass", "skip": "skip", "n/a": "FAIL"}.get(exp)
    bad = [r for r, s in zip(RUNS, row) if s != ok_status]
    notes = why
    for r in bad:
        unexpected += 1
        notes += f" | UNEXPECTED in {r}: {data[r].get(name, ('-', 'missing'))[1][:160]}"
    if exp == "n/a":
        notes += f" [got: {data['raised'].get(name, ('', ''))[1][:90]}]"
    print(f"{name:32} {row[0]:8} {row[1]:8} {row[2]:8} {exp:9} {notes}")
print(f"\n{unexpected} result(s) differ from the expected classification")
sys.exit(1 if unexpected else 0)
EOF
