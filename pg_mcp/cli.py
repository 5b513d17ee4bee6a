"""The `pg-mcp` command: serve (stdio, the default), check, demo, call and role-sql.

Stdout belongs to the MCP protocol when serving; everything human-readable goes to stderr,
except the output of `check` and `call`, which are for people and scripts.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import difflib
import gc
import json
import logging
import os
import signal
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from pg_mcp import __version__
from pg_mcp.errors import ConfigError, PgMcpError

if TYPE_CHECKING:
    from pydantic_settings import BaseSettings

    from pg_mcp.config import ServerConfig, ServerWideSettings, TransportSettings
    from pg_mcp.explore import DatabaseContext
    from pg_mcp.server.oauth import OAuthSettings

# pg_mcp.config (pydantic, pydantic-settings) and the server are imported inside the functions that
# use them, after `main` has paused the cyclic garbage collector (see `_started`).

log = logging.getLogger("pg_mcp")

COMMANDS = ("serve", "check", "demo", "call", "role-sql", "token")
EXIT_CONFIG = 2


class _NoTracebackFormatter(logging.Formatter):
    """Log lines never carry tracebacks (they may hold data or connection details): the type is enough."""

    def formatException(
        self, ei: tuple[type[BaseException], BaseException, TracebackType | None] | Any
    ) -> str:
        return f"({ei[0].__name__})" if ei and ei[0] else ""


class _JsonFormatter(_NoTracebackFormatter):
    """One JSON object per line (`PG_MCP_LOG_FORMAT=json`), for log collectors; an audit line's own
    JSON is nested as an object, not a string."""

    def format(self, record: logging.LogRecord) -> str:
        message = record.getMessage()
        entry: dict[str, Any] = {
            "time": self.formatTime(record),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if record.name == "pg_mcp.audit":
            with contextlib.suppress(ValueError):
                entry["message"] = "audit"
                entry["audit"] = json.loads(message)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(server: ServerWideSettings, log_format: str = "text") -> None:
    """Log lines to stderr at the server's level, and audit lines to its audit file too, if any."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        _JsonFormatter()
        if log_format == "json"
        else _NoTracebackFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(server.log_level)
    if server.audit_file:
        _log_audit_to(server.audit_file, required=server.audit_required)
    for noisy in ("mcp", "httpx", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(server.log_level)))
    logging.getLogger("sqlglot").setLevel(logging.ERROR)  # it would log statements it cannot classify


def _log_audit_to(path: str, *, required: bool) -> None:
    """Append every audit line to the file at `path`, whatever the log level; `required`: calls are
    refused while it cannot be written."""
    from pg_mcp.config import ENV_NAMES
    from pg_mcp.server import audit_file as audit_files

    audit = logging.getLogger("pg_mcp.audit")
    audit.setLevel(logging.INFO)  # the audit file is complete whatever the log level
    try:
        file_handler = audit_files.AuditFile(path)
    except OSError as exc:
        raise ConfigError(
            f"Invalid setting {ENV_NAMES['audit_file']}: cannot open it for appending ({exc.strerror})."
        ) from None
    file_handler.setFormatter(_NoTracebackFormatter("%(message)s"))
    audit.addHandler(file_handler)
    audit_files.ACTIVE = file_handler
    audit_files.REQUIRED = required


def _add_flags(group: argparse._ArgumentGroup, model: type[BaseSettings], *, switches: bool) -> None:
    """One flag per field of the settings model, named, described and defaulted by its declaration
    (`--max-rows` for max_rows). Values are left as text, validated with the environment's; with
    `switches`, a yes/no setting is a flag without a value (`--allow-unauthenticated`)."""
    from pg_mcp.config import flag, flag_help

    for dest, field in model.model_fields.items():
        if dest == "database_url":
            continue  # a positional argument, or --url
        if switches and field.annotation is bool:
            group.add_argument(flag(dest), dest=dest, action="store_const", const=True, default=None,
                               help=flag_help(dest, model))  # fmt: skip
        else:
            group.add_argument(flag(dest), dest=dest, default=None, help=flag_help(dest, model))


def _add_settings_flags(parser: argparse.ArgumentParser) -> None:
    """The flags of every command that serves a database: --config, and one per setting."""
    from pg_mcp.config import CONFIG_ENV, Settings

    group = parser.add_argument_group("settings (each also an environment variable)")
    group.add_argument(
        "--config", dest="config", default=None, help=f"a TOML file listing several databases [{CONFIG_ENV}]"
    )
    _add_flags(group, Settings, switches=False)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-mcp",
        description="A read-only PostgreSQL explorer for AI assistants over the Model Context Protocol.",
        usage="pg-mcp [serve] [DATABASE_URL] [settings flags]  |  pg-mcp {check,demo,call,role-sql} ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=(
            "Serve MCP over stdio (the default command):\n"
            "  pg-mcp postgresql://user:password@host:5432/db   (or set DATABASE_URL)\n"
            "Main settings flags (each also an environment variable; 'pg-mcp serve --help' lists all):\n"
            "  --max-rows N, --statement-timeout SECONDS, --schemas a,b, --tables s.t,\n"
            "  --hidden-columns s.t.c, --allow-functions f, --max-cost COST, --log-level LEVEL\n"
            "Run 'pg-mcp COMMAND --help' for each command."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pg-mcp {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_database_commands(commands)
    commands.add_parser(
        "role-sql",
        help="print the SQL script that creates a least-privilege role for pg-mcp (run it with psql)",
    )
    _add_token_command(commands)
    return parser


def _add_database_commands(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """serve, check, demo and call: the commands that take a database and its settings."""
    from pg_mcp.config import TransportSettings

    serve = commands.add_parser("serve", help="serve MCP over stdio (the default)")
    serve.add_argument(
        "database_url", nargs="?", help="postgresql://user:password@host:port/db [DATABASE_URL]"
    )
    _add_settings_flags(serve)
    transport = serve.add_argument_group("transport (each also an environment variable)")
    _add_flags(transport, TransportSettings, switches=True)

    check = commands.add_parser("check", help="connect, report the role's privileges and risks, and exit")
    check.add_argument("database_url", nargs="?", help="postgresql://... [DATABASE_URL]")
    _add_settings_flags(check)

    demo = commands.add_parser(
        "demo", help="start a throwaway PostgreSQL with demo data and serve MCP over stdio against it"
    )
    _add_settings_flags(demo)

    call = commands.add_parser("call", help="call one tool and print what the model would see")
    call.add_argument(
        "tool",
        help="query, list_schemas, list_tables, describe_table, search_schema, relationships, sample_rows, "
        "column_stats or explain",
    )
    call.add_argument("arguments", nargs="*", metavar="key=value", help='tool arguments, e.g. sql="SELECT 1"')
    call.add_argument("--url", dest="database_url", help="postgresql://... [DATABASE_URL]")
    call.add_argument("--demo", action="store_true", help="run against a throwaway demo database")
    call.add_argument("--json", action="store_true", help="print the structured content as JSON")
    _add_settings_flags(call)


def _add_token_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """`token add|list|revoke`: the static bearer tokens file of the HTTP transport."""
    from pg_mcp.config import TRANSPORT_ENV_NAMES

    token = commands.add_parser("token", help="manage the static bearer tokens of the HTTP transport")
    token_commands = token.add_subparsers(dest="token_command", required=True)
    add = token_commands.add_parser("add", help="create a token, print it once, store only its SHA-256")
    add.add_argument("name", help="who the token is for (shown in audit lines)")
    add.add_argument("--databases", help="comma-separated databases it may use (default: all)")
    add.add_argument("--tools", help="comma-separated tools it may call (default: all)")
    listing = token_commands.add_parser("list", help="the tokens' names, databases, creation times and tools")
    revoke = token_commands.add_parser("revoke", help="remove a token; a running server stops accepting it")
    revoke.add_argument("name")
    for sub in (add, listing, revoke):
        sub.add_argument("--file", help=f"the tokens file [{TRANSPORT_ENV_NAMES['auth_tokens_file']}]")


def parse_args(argv: Sequence[str]) -> argparse.Namespace:
    args = list(argv)
    if args and args[0] not in COMMANDS and not args[0].startswith("-") and "://" not in args[0]:
        close = difflib.get_close_matches(args[0], COMMANDS, n=1, cutoff=0.6)
        guess = f" (did you mean {close[0]}?)" if close else ""
        _parser().error(
            f"unknown command {args[0]!r}{guess}; commands: {', '.join(COMMANDS)}, or a postgresql:// URL to serve"
        )
    if not args or (args[0] not in COMMANDS and args[0] not in ("-h", "--help", "--version")):
        args.insert(0, "serve")
    parsed = _parser().parse_args(args)
    if parsed.command == "call" and _is_url(parsed.tool) and parsed.database_url is None:
        # `pg-mcp call postgresql://... list_tables`, as `pg-mcp postgresql://...` serves: the URL first
        if not parsed.arguments:
            _parser().error("call needs a tool after the URL: pg-mcp call --url postgresql://... list_tables")
        parsed.database_url, parsed.tool = parsed.tool, parsed.arguments.pop(0)
    return parsed


def _is_url(text: str) -> bool:
    return text.startswith(("postgresql://", "postgres://"))


def config_from(args: argparse.Namespace, *, dotenv: bool = True) -> ServerConfig:
    """What a command serves: its flags over the environment (and `.env`) over a config file's [server],
    with each database's own table over all of those; one DATABASE_URL when there is no config file."""
    from pg_mcp.config import ENV_NAMES, load_config

    overrides = {key: getattr(args, key, None) for key in ENV_NAMES}
    overrides["database_url"] = None if args.command == "demo" else args.database_url
    config_file = None if args.command == "demo" else getattr(args, "config", None)
    return load_config(overrides, config_file, dotenv=dotenv)


def main(argv: Sequence[str] | None = None) -> int:
    gc.disable()  # until start-up is over: see _started
    try:
        return _main(argv)
    finally:
        gc.enable()


#: Objects a server may allocate (net) before the cyclic collector's youngest pass: 10,000 instead
#: of Python's 700. Each call keeps hundreds of objects alive until it answers (fifty calls in flight
#: over HTTP), so with 700 the collector ran every few calls, scanning live objects and promoting
#: them into passes over older ones: at 50 HTTP clients 0.72 s of collection in 10 s, now 0.21 s
#: (passes of about 10 ms). Garbage in cycles waits a little longer; refcounting frees the rest.
SERVING_GC_THRESHOLD = 10_000


def _started(*, serving: bool) -> None:
    """End of start-up. Start-up makes ~130,000 objects that live as long as the process (modules, the
    MCP types' pydantic models, the tools' schemas), and the cyclic collector would scan all of them
    several times while they are made (~0.1 s a pass on a 2-core machine), so `main` pauses it until
    here. A server then freezes them: no later collection scans them again, so calls never stall on a
    pass over start-up's objects. The few cycles made meanwhile stay (about a thousand objects)."""
    if serving:
        gc.freeze()
        _, older, oldest = gc.get_threshold()
        gc.set_threshold(SERVING_GC_THRESHOLD, older, oldest)
    gc.enable()


def _main(argv: Sequence[str] | None) -> int:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "role-sql":
        return role_sql()
    if args.command == "token":
        return token(args)
    try:
        return _run(args)
    except PgMcpError as exc:
        print(f"pg-mcp: {exc}", file=sys.stderr)
        return EXIT_CONFIG if isinstance(exc, ConfigError) else 1
    except KeyboardInterrupt:
        return 130


def _run(args: argparse.Namespace) -> int:
    """A command that serves or inspects databases: its configuration, then logging, then the command."""
    from pg_mcp.config import ENV_NAMES, TRANSPORT_ENV_NAMES, load_transport

    if (
        args.command in ("call", "check")
        and args.log_level is None
        and ENV_NAMES["log_level"] not in os.environ
    ):
        args.log_level = "WARNING"  # the output is the point; keep stderr for problems
    config = config_from(args)
    if args.command == "serve":
        transport = load_transport({k: getattr(args, k, None) for k in TRANSPORT_ENV_NAMES})
        configure_logging(config.server, transport.log_format)
        return serve(config, transport=transport)
    _started(serving=False)
    configure_logging(config.server)
    if args.command == "check":
        return asyncio.run(check(config))
    if args.command == "demo":
        return demo(config)
    return call(config, args)


def role_sql() -> int:
    """Print the least-privilege role script, so a pip install needs no source checkout to use it."""
    from pg_mcp.bundled import sql_file

    try:
        sys.stdout.write(sql_file("readonly_role.sql").read_text())
    except ConfigError as exc:
        print(f"pg-mcp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


def serve(
    config: ServerConfig,
    contexts: dict[str, DatabaseContext] | None = None,
    transport: TransportSettings | None = None,
) -> int:
    from pg_mcp.config import TransportSettings
    from pg_mcp.server import build_server

    for settings in config.databases.values():
        settings.dsn  # noqa: B018 -- fail fast with a clear message when a URL is missing
    transport = transport or TransportSettings(transport="stdio")
    served = ", ".join(f"{name} ({s.safe_dsn})" for name, s in config.databases.items())
    if transport.transport == "http":
        from pg_mcp.server.http import HttpOptions, is_loopback, serve_http

        options = HttpOptions(transport, _oauth(transport))
        options.check()
        if not options.authenticated and not is_loopback(transport.host):
            log.warning("serving %s WITHOUT authentication (--allow-unauthenticated)", transport.host)
        log.info(
            "pg-mcp %s serving %s over HTTP at http://%s:%d/mcp",
            __version__,
            served,
            transport.host,
            transport.port,
        )
        server = build_server(config, contexts)
        _started(serving=True)
        serve_http(server, options)
        return 0
    log.info("pg-mcp %s serving %s over stdio", __version__, served)
    with _stopped_by_signals():
        server = build_server(config, contexts)
        _started(serving=True)
        import anyio

        anyio.run(server.run_stdio_async, backend_options={"loop_factory": _event_loop_factory()})
    return 0


def _event_loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    """uvloop's event loop where it is installed (what uvicorn runs HTTP on): each database exchange
    and each message costs less of the loop's own CPU than on asyncio's; None for asyncio's."""
    try:
        import uvloop
    except ImportError:
        return None
    return uvloop.new_event_loop


def _oauth(transport: TransportSettings) -> OAuthSettings | None:
    """OAuth resource-server settings when an issuer and audience are configured (both or neither)."""
    from pg_mcp.config import TRANSPORT_ENV_NAMES as NAMES
    from pg_mcp.server.oauth import OAuthSettings

    if not transport.oauth_issuer and not transport.oauth_audience:
        return None
    if not (transport.oauth_issuer and transport.oauth_audience):
        raise ConfigError(f"OAuth needs both {NAMES['oauth_issuer']} and {NAMES['oauth_audience']}.")

    def split(text: str) -> tuple[str, ...]:
        return tuple(part for part in text.replace(",", " ").split() if part)

    return OAuthSettings(
        issuer=transport.oauth_issuer,
        audience=transport.oauth_audience,
        jwks_url=transport.oauth_jwks_url,
        algorithms=split(transport.oauth_algorithms),
        required_scopes=split(transport.oauth_scopes),
        databases_claim=transport.oauth_databases_claim or None,
    )


def token(args: argparse.Namespace) -> int:
    """`pg-mcp token add|list|revoke`: the static bearer tokens file."""
    from dotenv import load_dotenv

    from pg_mcp.config import INSIGHT_TOOL_NAMES, OWN_TOOL_NAMES, TRANSPORT_ENV_NAMES
    from pg_mcp.server.tokens import TokenStore, token_databases, token_tools

    load_dotenv(".env", override=False)
    variable = TRANSPORT_ENV_NAMES["auth_tokens_file"]
    path = args.file or os.environ.get(variable)
    if not path:
        print(f"pg-mcp: name the tokens file with --file or {variable}.", file=sys.stderr)
        return EXIT_CONFIG
    store = TokenStore(path)
    try:
        if args.token_command == "add":
            tools = token_tools(args.tools)
            print(store.add(args.name, token_databases(args.databases), tools))
            print(
                f"Token {args.name!r} stored in {path} (only its SHA-256); it is shown this once.",
                file=sys.stderr,
            )
            for name in [t for t in tools or () if t not in (*OWN_TOOL_NAMES, *INSIGHT_TOOL_NAMES)]:
                print(
                    f"Note: {name} is not one of pg-mcp's tools: it must be a [tools.{name}] of the config file.",
                    file=sys.stderr,
                )
        elif args.token_command == "revoke":
            store.revoke(args.name)
            print(f"Token {args.name!r} revoked.", file=sys.stderr)
        else:
            for entry in store.tokens():
                scope = ", ".join(entry.databases) if entry.databases is not None else "all databases"
                tools_scope = ", ".join(entry.tools) if entry.tools is not None else "all tools"
                print(f"{entry.name}\t{scope}\t{entry.created}\t{tools_scope}")
    except ConfigError as exc:
        print(f"pg-mcp: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


async def check(config: ServerConfig) -> int:
    """Report every database; exit 0 only when all of them can serve."""
    from pg_mcp.database.role_report import format_report, role_report
    from pg_mcp.explore import DatabaseContext

    failed = []
    several = len(config.databases) > 1
    for name, settings in config.databases.items():
        context = DatabaseContext.connect_later(name, settings)
        title = f"{name}: {settings.safe_dsn}" if several else settings.safe_dsn
        try:
            report = await role_report(context.db, context.catalog)
        except PgMcpError as exc:
            print(f"Cannot serve {title}:\n{exc}", file=sys.stderr)
            failed.append(name)
            continue
        finally:
            await context.db.close()
        print(f"Connected to {title}")
        print(format_report(report, settings))
        if several:
            print()
    if failed and several:
        print(f"Cannot serve: {', '.join(failed)}.", file=sys.stderr)
    return 1 if failed else 0


def _this_command(*args: str) -> dict[str, Any]:
    """This very command, by absolute path: a desktop host does not search the shell's PATH."""
    script = Path(sys.argv[0])
    if script.name == "pg-mcp" and script.exists():
        return {"command": str(script.absolute()), "args": list(args)}
    return {"command": sys.executable, "args": ["-m", "pg_mcp", *args]}


def demo(config: ServerConfig) -> int:
    from pg_mcp.database.executor import Database
    from pg_mcp.demo_cluster import demo_database
    from pg_mcp.explore import DatabaseContext
    from pg_mcp.operator_notes import NO_NOTES

    with _stopped_by_signals(), demo_database() as demo:
        cluster = demo.cluster
        passfile = cluster.root / "pgpass"
        passfile.write_text(f"127.0.0.1:{cluster.port}:*:*:{cluster.password}\n")
        passfile.chmod(0o600)
        entry = {"mcpServers": {"postgres-demo": _this_command("demo")}}
        print(
            f"Demo database at 127.0.0.1:{cluster.port} (data in {cluster.root}; the server stops "
            "when pg-mcp does).\n"
            f"Connect with psql: PGPASSFILE={passfile} psql -h 127.0.0.1 -p {cluster.port} -U mcp_reader demo\n"
            f"Claude Desktop entry (claude_desktop_config.json):\n{json.dumps(entry, indent=2)}\n"
            "Serving MCP over stdio; press Ctrl-C to stop.",
            file=sys.stderr,
        )
        demo_config = _demo_config(config, demo.url)
        settings = demo_config.databases["demo"]
        database = Database(settings, ready=demo.wait_ready)
        contexts = {
            "demo": DatabaseContext("demo", settings, database, demo_config.notes.get("demo", NO_NOTES))
        }
        return serve(demo_config, contexts)


def _demo_config(config: ServerConfig, url: str) -> ServerConfig:
    """The demo database as the one database served, with the command's other settings."""
    from dataclasses import replace

    from pg_mcp.config import single_database

    settings = config.databases[config.default].model_copy(update={"database_url": _secret(url)})
    demo = single_database(settings, "the demo")  # what a config file wrote about its database, too
    return replace(demo, notes={demo.default: notes} if (notes := config.notes.get(config.default)) else {})


@contextlib.contextmanager
def _stopped_by_signals() -> Iterator[None]:
    """SIGTERM (what hosts send when they quit) and SIGHUP end pg-mcp the ordinary way: over stdio as
    if input had ended (replies to requests in flight are written), so that the demo's PostgreSQL is
    stopped on the way out."""
    from pg_mcp.server.stdio import end_input

    def leave(signum: int, _frame: object) -> None:
        if not end_input():  # serving over pipes: end like stdin closing; otherwise leave at once
            raise SystemExit(128 + signum)

    previous = {sig: signal.signal(sig, leave) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def call(config: ServerConfig, args: argparse.Namespace) -> int:
    arguments = dict(_parse_argument(item) for item in args.arguments)
    if args.demo:
        from pg_mcp.demo_cluster import demo_database

        with _stopped_by_signals(), demo_database() as demo:
            asyncio.run(demo.wait_ready(timeout=600))
            return asyncio.run(_call(_demo_config(config, demo.url), args, arguments))
    for settings in config.databases.values():
        settings.dsn  # noqa: B018 -- fail fast with a clear message when a URL is missing
    return asyncio.run(_call(config, args, arguments))


async def _call(config: ServerConfig, args: argparse.Namespace, arguments: dict[str, Any]) -> int:
    from mcp import Client

    from pg_mcp.server import build_server

    async with Client(build_server(config)) as client:
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        result = None
        if args.tool in tools:
            result = await client.call_tool(args.tool, _typed(arguments, tools[args.tool].input_schema))
    if result is None:  # raised out here: inside, the client's task group would wrap it in an ExceptionGroup
        raise ConfigError(f"Unknown tool {args.tool!r}.", f"Tools: {', '.join(sorted(tools))}.")
    if args.json and result.structured_content is not None:
        _print(json.dumps(result.structured_content, indent=2, ensure_ascii=False))
    else:
        _print("\n".join(getattr(block, "text", "") for block in result.content))
    return 1 if result.is_error else 0


def _print(text: str) -> None:
    """The answer on stdout in one write; a reader that has read enough and gone (`| grep -q`, `| head`)
    is not an error."""
    try:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)  # nothing more to say: exit without a second error
        os.dup2(devnull, sys.stdout.fileno())


def _parse_argument(item: str) -> tuple[str, str]:
    key, sep, value = item.partition("=")
    if not sep or not key:
        raise ConfigError(f"Tool arguments are key=value, not {item!r}.")
    return key, value


def _typed(arguments: dict[str, str], schema: dict[str, Any]) -> dict[str, Any]:
    """Integers where the tool's input schema wants one (`max_rows=5`); text everywhere else."""
    properties = schema.get("properties", {})
    typed: dict[str, Any] = {}
    for key, value in arguments.items():
        spec = properties.get(key, {})
        kinds = {spec.get("type")} | {option.get("type") for option in spec.get("anyOf", [])}
        if "integer" in kinds and value.lstrip("-").isdigit():
            typed[key] = int(value)
        else:
            typed[key] = value
    return typed


def _secret(url: str) -> Any:
    from pydantic import SecretStr

    return SecretStr(url)
