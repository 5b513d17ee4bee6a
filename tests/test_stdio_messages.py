"""Every malformed line on stdin gets its JSON-RPC 2.0 error, so no client waits for ever."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import DemoDatabase
from mcp_helpers import ROOT, server_env, text_of

from pg_mcp.server.stdio import INVALID_REQUEST, PARSE_ERROR, invalid_message

BAD_LINES: list[tuple[bytes, int, int | None]] = [
    (b"not json", PARSE_ERROR, None),
    (b'{"jsonrpc":"1.0","id":5,"method":"ping"}', INVALID_REQUEST, 5),
    (b'{"jsonrpc":"2.0","id":6,"method":"ping","params":[1]}', INVALID_REQUEST, 6),
    (b'{"jsonrpc":"2.0","id":7,"method":"ping"}\xff', PARSE_ERROR, None),
    (b'{"jsonrpc":"2.0","id":8,"method":"ping"}\x00', PARSE_ERROR, None),
    (b"[" * 100_000 + b"]" * 100_000, INVALID_REQUEST, None),
    (b'{"jsonrpc":"2.0","id":9,"method":"tools/call","params":{"name":"query",'
     b'"arguments":{"sql":"SELECT \'\\udcff\'"}}}', INVALID_REQUEST, 9),
    (b"[]", INVALID_REQUEST, None),
    (b'{"id":10}', INVALID_REQUEST, 10),
    (b'{"jsonrpc":"2.0","id":11}', INVALID_REQUEST, 11),
    (b'{"jsonrpc":"2.0","id":12,"method":7}', INVALID_REQUEST, 12),
    (b'{"jsonrpc":"2.0","id":[1],"method":"ping"}', INVALID_REQUEST, None),
    (b'"just a string"', INVALID_REQUEST, None),
]  # fmt: skip

GOOD_LINES = [
    b'{"jsonrpc":"2.0","id":1,"method":"ping"}',
    b'{"jsonrpc":"2.0","method":"notifications/initialized"}',
    b'{"jsonrpc":"2.0","id":"a","result":{}}',
    b'{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"query","arguments":{"sql":"SELECT \'[[[[\'"}}}',
]


@pytest.mark.parametrize(("line", "code", "request_id"), BAD_LINES)
def test_a_malformed_line_gets_its_error(line: bytes, code: int, request_id: int | None) -> None:
    error = invalid_message(line)
    assert error is not None and error["error"]["code"] == code and error["id"] == request_id, error
    assert error["jsonrpc"] == "2.0" and error["error"]["message"]


@pytest.mark.parametrize("line", GOOD_LINES)
def test_a_valid_message_passes(line: bytes) -> None:
    assert invalid_message(line) is None
    assert invalid_message(b"  \r") == {}


async def test_every_malformed_line_is_answered_over_real_pipes(pg: DemoDatabase) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pg_mcp", pg.url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, env=server_env(), cwd=ROOT,
    )  # fmt: skip
    assert proc.stdin is not None and proc.stdout is not None

    async def send(line: bytes) -> None:
        assert proc.stdin is not None
        proc.stdin.write(line + b"\n")
        await proc.stdin.drain()

    async def receive() -> dict[str, Any]:
        assert proc.stdout is not None
        reply: dict[str, Any] = json.loads(await asyncio.wait_for(proc.stdout.readline(), 60))
        return reply

    try:
        await send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
            "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}}).encode())  # fmt: skip
        assert (await receive())["id"] == 1
        await send(b'{"jsonrpc":"2.0","method":"notifications/initialized"}')
        for line, code, request_id in BAD_LINES:
            await send(line)
            reply = await receive()
            assert reply["error"]["code"] == code and reply["id"] == request_id, (line[:60], reply)
        await send(b'{"jsonrpc":"2.0","id":99,"method":"ping"}')
        assert await receive() == {"jsonrpc": "2.0", "id": 99, "result": {}}
    finally:
        proc.stdin.close()
        await asyncio.wait_for(proc.wait(), 20)


async def test_tool_arguments_are_explained_in_one_sentence(pg: DemoDatabase) -> None:
    from mcp_helpers import mcp_client, text_of

    async with mcp_client(pg.url) as client:
        missing = await client.call_tool("describe_table", {})
        wrong = await client.call_tool("sample_rows", {"table": "hr.departments", "n": "many"})
        unknown = await client.call_tool("describe_table", {"table": "hr.departments", "bogus": 1})
    assert missing.is_error and text_of(missing) == "describe_table needs the argument table (text).", (
        text_of(missing)
    )
    assert wrong.is_error and text_of(wrong).startswith("The argument n of sample_rows must be an integer")
    assert "pydantic" not in text_of(wrong)
    assert unknown.is_error and text_of(unknown) == (
        "describe_table does not take the argument 'bogus'; it takes: table, schema."
    ), text_of(unknown)


INIT = json.dumps({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
    "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "raw", "version": "0"}}})  # fmt: skip


def _tool(request_id: int, sql: str) -> str:
    arguments = {"name": "query", "arguments": {"sql": sql}}
    return json.dumps({"jsonrpc": "2.0", "id": request_id, "method": "tools/call", "params": arguments})


async def _pipe_through(pg: DemoDatabase, *lines: str) -> dict[Any, dict[str, Any]]:
    """Write the lines, close stdin at once (as `printf ... | pg-mcp` does), collect every answer."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "pg_mcp", pg.url,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL,
        env=server_env(), cwd=ROOT,
    )  # fmt: skip
    out, _ = await asyncio.wait_for(proc.communicate(("\n".join(lines) + "\n").encode()), 60)
    assert proc.returncode == 0
    return {answer.get("id"): answer for answer in map(json.loads, out.decode().splitlines())}


async def test_requests_in_flight_when_stdin_closes_are_answered(pg: DemoDatabase) -> None:
    answers = await _pipe_through(pg, INIT, _tool(2, "SELECT 41 + 1 AS answer"))
    assert answers[2]["result"]["structuredContent"]["rows"] == [[42]], answers[2]


async def test_a_query_still_running_when_stdin_closes_is_cancelled_and_answered(pg: DemoDatabase) -> None:
    marker = "pg_mcp_eof_test"
    slow = f"SELECT count(*) FROM generate_series(1, 300000000) AS {marker}"
    answers = await _pipe_through(pg, INIT, _tool(3, slow))
    assert answers[3]["error"]["code"] == -32800 and "stdin closed" in answers[3]["error"]["message"]
    for _ in range(100):  # terminated before pg-mcp exited; its backend then ends within moments
        running = await pg.admin_fetch(
            "SELECT pid FROM pg_stat_activity WHERE query LIKE $1 AND state = 'active' AND pid <> pg_backend_pid()",
            f"%{marker}%",
        )
        if not running:
            break
        await asyncio.sleep(0.1)
    assert not running, "the query was cancelled on the server too (it would run for many seconds)"


def test_a_client_killed_mid_call_leaves_pg_mcp_to_exit_quietly(pg: DemoDatabase, tmp_path: Path) -> None:
    """A SIGKILLed client's pipes close at once, both ends: the reply has nowhere to go, and that is no
    error. Closing our ends of both pipes mid-call is exactly what the kernel does for a dead client."""
    slow = "SELECT count(*) FROM generate_series(1, 30000000) AS pg_mcp_killed_client"
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pg_mcp", pg.url], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=stderr, env=server_env(), cwd=ROOT,
        )  # fmt: skip
        assert proc.stdin and proc.stdout
        proc.stdin.write((INIT + "\n" + _tool(2, slow) + "\n").encode())
        proc.stdin.flush()
        assert json.loads(proc.stdout.readline())["id"] == 1, "initialized; the query is in flight"
        proc.stdout.close()
        proc.stdin.close()
        code = proc.wait(timeout=60)
    assert code == 0
    assert "Traceback" not in errors.read_text(), errors.read_text()


async def test_a_request_before_initialize_is_told_so(pg: DemoDatabase) -> None:
    early = json.dumps({"jsonrpc": "2.0", "id": 9, "method": "tools/list"})
    answers = await _pipe_through(pg, early, INIT)
    assert answers[9]["error"]["code"] == -32600 and "not initialised" in answers[9]["error"]["message"]
    assert "result" in answers[1]


async def test_resource_errors_say_not_found_or_unavailable(pg: DemoDatabase) -> None:
    from mcp.shared.exceptions import MCPError
    from mcp_helpers import mcp_client

    async with mcp_client(pg.url) as client:
        with pytest.raises(MCPError) as missing:
            await client.read_resource("postgres://sales/no_such_table")
    assert missing.value.error.code == -32602 and "does not exist" in missing.value.error.message
    down = "postgresql://nobody:x@127.0.0.1:1/none"
    async with mcp_client(down, connect_timeout=2) as client:
        with pytest.raises(MCPError) as unavailable:
            await client.read_resource("postgres://database")
        with pytest.raises(MCPError) as listing:
            await client.list_resources()
    assert unavailable.value.error.code == -32000 and "refused" in unavailable.value.error.message.lower()
    assert listing.value.error.code == -32000


async def test_a_prompt_without_its_argument_is_an_invalid_params_error(pg: DemoDatabase) -> None:
    from mcp.shared.exceptions import MCPError
    from mcp_helpers import mcp_client

    async with mcp_client(pg.url) as client:
        with pytest.raises(MCPError) as missing:
            await client.get_prompt("answer_question", {})
        with pytest.raises(MCPError) as unknown:
            await client.get_prompt("no_such_prompt", {})
        fine = await client.get_prompt("answer_question", {"question": "How many orders?"})
    assert missing.value.error.code == -32602 and "needs the argument question" in missing.value.error.message
    assert unknown.value.error.code == -32602 and "explore_database" in unknown.value.error.message
    assert "How many orders?" in str(fine.messages[0].content)


async def test_every_tool_declares_its_output_and_describes_its_arguments(pg: DemoDatabase) -> None:
    from mcp_helpers import mcp_client

    async with mcp_client(pg.url) as client:
        listing = await client.list_tools()
        described = await client.call_tool("describe_table", {"table": "hr.departments"})
        plan = await client.call_tool("explain", {"sql": "SELECT 1"})
    tools = listing.tools
    prompt = len(json.dumps([[t.name, t.description, t.input_schema] for t in tools], ensure_ascii=False))
    assert prompt < 6_000, (
        f"the tools' names, descriptions and arguments are {prompt} bytes: a model reads them"
    )
    outputs = len(json.dumps([t.output_schema for t in tools], ensure_ascii=False))
    assert outputs < 7_000, f"the output schemas are {outputs} bytes: every tools/list carries them"
    for tool in tools:
        assert '"title"' not in json.dumps([tool.input_schema, tool.output_schema]), tool.name
        assert tool.output_schema and tool.output_schema.get("type") == "object", tool.name
        assert "$defs" not in json.dumps(tool.output_schema), f"{tool.name}: cheap to validate"
        for name, spec in tool.input_schema.get("properties", {}).items():
            assert spec.get("description"), f"{tool.name}.{name} has no description"
    assert not described.is_error and described.structured_content["columns"]
    assert not plan.is_error and "plan" in plan.structured_content


async def test_structured_results_follow_the_published_output_schemas(pg: DemoDatabase) -> None:
    """The output schemas come from the catalog's records: a client validating a result against the
    published (compacted) schema accepts every real answer and rejects a renamed or mistyped field."""
    import jsonschema
    from mcp_helpers import mcp_client

    calls = {
        "list_schemas": {},
        "list_tables": {"schema": "sales"},
        "describe_table": {"table": "sales.orders"},
        "search_schema": {"pattern": "customer"},
        "relationships": {"table": "sales.orders"},
        "column_stats": {"table": "sales.orders"},
        "query": {"sql": "SELECT 1 AS one"},
    }
    async with mcp_client(pg.url) as client:
        schemas = {tool.name: tool.output_schema or {} for tool in (await client.list_tools()).tools}
        results = {name: await client.call_tool(name, arguments) for name, arguments in calls.items()}
    for name, result in results.items():
        assert not result.is_error, f"{name}: {text_of(result)}"
        jsonschema.validate(result.structured_content, schemas[name])
    described = results["describe_table"].structured_content
    column = dict(described["columns"][0])
    column["nullable"] = "yes"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**described, "columns": [column]}, schemas["describe_table"])
    edge = dict(results["relationships"].structured_content["foreign_keys"][0])
    edge["source"] = edge.pop("from")
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({"scope": "x", "foreign_keys": [edge]}, schemas["relationships"])


async def test_list_results_carry_cache_hints_and_a_stable_order(pg: DemoDatabase) -> None:
    from mcp_helpers import mcp_client

    async with mcp_client(pg.url) as client:
        assert client.protocol_version == "2026-07-28"
        tools = await client.list_tools()
        again = await client.list_tools()
        resources = await client.list_resources()
    assert (tools.ttl_ms, tools.cache_scope) == (3_600_000, "private"), "names the caller's databases"
    assert (resources.ttl_ms, resources.cache_scope) == (60_000, "private"), "depends on who asks"
    assert [t.name for t in tools.tools] == [t.name for t in again.tools] == [
        "query", "list_schemas", "list_tables", "describe_table", "search_schema", "relationships",
        "sample_rows", "column_stats", "explain",
    ]  # fmt: skip


async def test_each_call_span_names_the_database_the_operation_and_the_outcome(pg: DemoDatabase) -> None:
    from mcp_helpers import mcp_client
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)  # once per process; later calls are ignored with a warning
    async with mcp_client(pg.url) as client:
        await client.call_tool("query", {"sql": "SELECT 1 AS one"})
        await client.call_tool("query", {"sql": "DELETE FROM sales.orders"})
    calls = [dict(s.attributes or {}) for s in exporter.get_finished_spans() if s.name == "tools/call query"]
    assert len(calls) == 2, "no other test sets a tracer provider, so both calls were traced here"
    assert calls[0]["db.namespace"] == "demo" and calls[0]["db.operation.name"] == "SELECT"
    assert calls[0]["pg_mcp.outcome"] == "ok" and calls[0]["db.response.returned_rows"] == 1
    assert calls[1]["pg_mcp.outcome"] == "refused:not_read_only"
