"""MCP wiring: the tools, resources, prompts and completions over the configured databases.

No logic beyond choosing the database and converting errors (server/errors.py); audit lines are
written here, at the edge, once for every tool call and resource read (server/audit.py).

Start-up is what a stdio client waits for, so nothing a call needs is done before `initialize` is
answered: the databases (and with them the driver, the catalog and the guard) are made, the SQL
parsers loaded and the pools opened beside serving, after that answer (see `build_server`).
"""

import asyncio
import logging
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, Annotated, Any

from mcp.server.caching import CacheableMethod, CacheHint
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import Server
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.shared.exceptions import MCPError
from mcp_types import (
    CallToolResult,
    Completion,
    CompletionArgument,
    GetPromptResult,
    InputRequiredResult,
    ListResourcesResult,
    PaginatedRequestParams,
    PromptReference,
    Resource,
    ResourceTemplateReference,
    TextContent,
)
from mcp_types import Tool as MCPTool
from pydantic import Field, ValidationError

from pg_mcp import __version__, explore
from pg_mcp.config import ServerConfig, Settings
from pg_mcp.errors import INVALID_PARAMS, ConfigError, InvalidArgumentError, NotFoundError, PgMcpError
from pg_mcp.operator_notes import NO_NOTES
from pg_mcp.server.arguments import explain_invalid, unknown_arguments
from pg_mcp.server.audit import audit_refusal, audited
from pg_mcp.server.databases import Databases
from pg_mcp.server.errors import request_error, tool_error
from pg_mcp.server.principal import current_principal
from pg_mcp.server.progress import progress_reported
from pg_mcp.server.resources import (
    GLOSSARY_URI,
    MULTI_TABLE_TEMPLATE,
    OVERVIEW_URI,
    SINGLE_TABLE_TEMPLATE,
    quoted,
    resource_page,
)
from pg_mcp.server.schemas import compact_output_schema, without_titles
from pg_mcp.server.stdio import fast_stdio_server
from pg_mcp.server.tools import READ_ONLY, TOOLS, Run, Tool, bind_database, operator_tool

if TYPE_CHECKING:
    from pg_mcp.explore import DatabaseContext, ToolOutput

log = logging.getLogger(__name__)

INSTRUCTIONS = """\
Read-only access to a PostgreSQL database. Orient with list_schemas / list_tables (or search_schema
for a concept), read columns, keys and joins with describe_table and relationships, check real values
with column_stats or sample_rows, then answer with one SELECT through query (explain first if it may
be heavy). Results are capped and the last line always says whether rows were cut. Nothing you run
can change the database."""

EXPLORE_PROMPT = """\
Get oriented in this PostgreSQL database before answering anything:
1. Read the resource postgres://database (or call list_schemas) for the schemas and their size.
2. list_tables for the schemas that matter; note the biggest tables and the comments.
3. describe_table on the central tables (the ones most foreign keys point to); relationships shows how
   they join.
4. sample_rows and column_stats on a table show what its values look like.
Then summarise: what the business does, the main entities and how they relate, where the facts
(events, orders, payments) and the dimensions (customers, products) are, and any caveats you noticed
(nullable keys, enum values, soft deletes, time zones). Keep the summary short."""

ANSWER_PROMPT = """\
Answer this question from the database: {question}

Work in this order, and keep each step small:
1. Find the tables: search_schema with the key nouns of the question, then describe_table on candidates.
2. Check how they join with relationships, and the real values of any filter column with column_stats
   (exact enum or status spellings, date ranges) before writing a WHERE clause.
3. Write ONE query that computes the answer in the database (aggregate; do not fetch raw rows to count
   them yourself). If it touches large tables, run explain first and avoid sequential scans of
   millions of rows when an index exists.
4. Run it with query. If the result says rows were cut, aggregate or filter more instead of raising
   max_rows.
5. Answer in plain language, then show the SQL you ran and state any assumption (time zone, what
   counts as "active", how ties or NULLs were treated)."""


GLOSSARY_DESCRIPTION = "Business terms of this data: what each means, the SQL for it, the tables it is about."


class PgMcpServer(MCPServer[None]):
    """MCPServer whose resource list is read from the databases page by page (cursor pagination), and
    whose databases are made at their first use."""

    def __init__(
        self,
        databases: Callable[[], Databases],
        names: Sequence[str],
        instructions_for: Callable[[Sequence[str]], str],
        **kwargs: Any,
    ) -> None:
        super().__init__(instructions=instructions_for(names), **kwargs)
        self._make_databases = databases
        self._databases: Databases | None = None
        self._making = threading.Lock()
        self._opening = asyncio.Lock()
        #: The configured database names, the first being the default: known before the databases are made.
        self.database_names = tuple(names)
        #: The databases each tool is offered on, in configured order: an operator's tool runs on its own
        #: database, and each database's `tools` / `disable_tools` choose among the rest.
        self.tool_offers: dict[str, tuple[str, ...]] = {}
        #: Set when the stdio client has its `initialize` answer; None until then, and over other transports.
        self.answered: asyncio.Event | None = None
        self._instructions_for = instructions_for
        # The SDK reads `instructions` (initialize, server/discover) from its low-level server's attribute;
        # a property on a subclass of it answers for the caller of the request instead.
        lowlevel = self._lowlevel_server
        lowlevel.__class__ = type(
            "CallerAwareServer",
            (type(lowlevel),),
            {
                "instructions": property(
                    lambda _: self._instructions_for(self.visible_names()), lambda _, __: None
                )
            },
        )

    @property
    def lowlevel(self) -> Server[None]:
        """The SDK's low-level server: the handler chain every request goes through."""
        return self._lowlevel_server

    def visible_names(self) -> tuple[str, ...]:
        """The configured databases the current caller may use, in configured order."""
        principal = current_principal.get()
        if principal is None:
            return self.database_names
        return tuple(name for name in self.database_names if principal.may_use(name))

    def offered(self, tool: str, names: Sequence[str]) -> tuple[str, ...]:
        """The databases among `names` on which the current caller may call `tool` (none when its
        principal may not call it at all)."""
        principal = current_principal.get()
        if principal is not None and not principal.may_call(tool):
            return ()
        return tuple(name for name in self.tool_offers.get(tool, ()) if name in names)

    async def list_tools(self) -> list[MCPTool]:
        """The tools the caller may call on one of its databases, each `database` argument offering
        only the caller's databases."""
        names = self.visible_names()
        tools = [tool for tool in await super().list_tools() if self.offered(tool.name, names)]
        if names == self.database_names:
            return tools
        return [  # the schemas were built for every database: the caller's are rebuilt
            tool.model_copy(update={"input_schema": with_database_argument(tool.input_schema, names)})
            for tool in tools
        ]

    @property
    def several(self) -> bool:
        """More than one database: tools take `database`, table URIs name it."""
        return len(self.database_names) > 1

    @property
    def databases(self) -> Databases:
        """The configured databases, made at first use: making them imports the driver, the catalog
        and the guard, which the server need not do before it answers `initialize`."""
        with self._making:  # the warm-up thread and a first call may both ask
            if self._databases is None:
                self._databases = self._make_databases()
            return self._databases

    async def open_databases(self) -> Databases:
        """`databases`, made the first time in one worker thread (the other callers wait for it), so
        that the event loop keeps serving meanwhile."""
        if self._databases is None:
            async with self._opening:
                if self._databases is None:
                    await asyncio.to_thread(lambda: self.databases)
        return self.databases

    async def close_databases(self) -> None:
        """Close the pools of the databases, if they were made."""
        with self._making:
            made = self._databases
        if made is not None:
            await asyncio.gather(*(context.db.close() for context in made.contexts.values()))

    async def get_prompt(
        self, name: str, arguments: dict[str, Any] | None = None, context: Context[None, Any] | None = None
    ) -> GetPromptResult | InputRequiredResult:
        """An unknown prompt or a missing argument is an invalid-params error naming what is wrong."""
        prompt = self._prompt_manager.get_prompt(name)
        if prompt is None:
            known = ", ".join(p.name for p in self._prompt_manager.list_prompts())
            raise MCPError(code=INVALID_PARAMS, message=f"Unknown prompt {name!r}; prompts: {known}.")
        missing = [a.name for a in prompt.arguments or [] if a.required and a.name not in (arguments or {})]
        if missing:
            raise MCPError(
                code=INVALID_PARAMS, message=f"The prompt {name} needs the argument {', '.join(missing)}."
            )
        return await super().get_prompt(name, arguments, context)

    async def call_tool(
        self, name: str, arguments: dict[str, Any], context: Context[None, Any] | None = None
    ) -> CallToolResult | InputRequiredResult:
        """Unknown argument names are refused and invalid ones explained in one sentence; a tool the caller
        is not offered on any of its databases is answered as one that does not exist."""
        tool = self._tool_manager.get_tool(name)
        if tool is not None and not self.offered(name, self.visible_names()):
            database = arguments.get("database")
            audit_refusal(name, database if isinstance(database, str) else None, arguments,
                          NotFoundError(f"The tool {name} is not offered to this caller."))  # fmt: skip
            raise ToolError(f"Unknown tool: {name}")
        if tool is not None:
            problem = unknown_arguments(name, tool.parameters, arguments)
            if problem:
                raise ToolError(problem)
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if tool is not None and isinstance(exc.__cause__, ValidationError):
                raise ToolError(explain_invalid(name, tool.parameters, exc.__cause__)) from None
            raise

    async def run_stdio_async(self) -> None:
        """Serve over stdio without the SDK's per-message worker threads (see pg_mcp/server/stdio.py)."""
        self.answered = asyncio.Event()
        async with fast_stdio_server(on_initialized=self.answered.set) as (read_stream, write_stream):
            server = self._lowlevel_server
            await server.run(read_stream, write_stream, server.create_initialization_options())

    async def _handle_list_resources(
        self, ctx: ServerRequestContext[None], params: PaginatedRequestParams | None
    ) -> ListResourcesResult:
        cursor = params.cursor if params else None
        try:
            databases = await self.open_databases()
            entries, next_cursor = await resource_page(databases, cursor)
        except PgMcpError as exc:
            raise request_error(exc) from None
        resources = [
            Resource(uri=e.uri, name=e.name, description=e.description, mime_type="text/plain")
            for e in entries
        ]
        if cursor is None:  # the overview comes first, on the first page
            overview = Resource(
                uri=OVERVIEW_URI,
                name="database",
                description="The database: version, size, extensions and schemas. Read this first."
                if not self.several
                else "The databases, each with its version, size, extensions and schemas. Read this first.",
                mime_type="text/plain",
            )
            first = [overview]
            if databases.with_glossary():  # listed only to a caller with a glossary to read
                first.append(
                    Resource(
                        uri=GLOSSARY_URI,
                        name="glossary",
                        description=GLOSSARY_DESCRIPTION,
                        mime_type="text/plain",
                    )
                )
            resources[:0] = first
        return ListResourcesResult(resources=resources, next_cursor=next_cursor)


#: Freshness hints on list and read results (2026-07-28): what the server offers changes only with its
#: configuration; what a database holds may change at any time, and depends on who asks.
_STATIC = CacheHint(ttl_ms=3_600_000, scope="public")
_PER_CALLER = CacheHint(ttl_ms=3_600_000, scope="private")  # names the caller's databases only
_CATALOG = CacheHint(ttl_ms=60_000, scope="private")
CACHE_HINTS: dict[CacheableMethod, CacheHint] = {
    "tools/list": _PER_CALLER,
    "prompts/list": _STATIC,
    "resources/templates/list": _STATIC,
    "server/discover": _PER_CALLER,
    "resources/list": _CATALOG,
    "resources/read": _CATALOG,
}


def _tool_result(output: "ToolOutput") -> CallToolResult:
    return CallToolResult(
        content=[TextContent(type="text", text=output.text)], structured_content=output.structured
    )


def _row_count(output: "ToolOutput") -> tuple[int | None, bool]:
    """The rows a result carries and whether it was cut, for the audit line and the metrics."""
    count = output.structured.get("row_count")
    return (count if isinstance(count, int) else None), bool(output.structured.get("truncated"))


def open_contexts(config: ServerConfig) -> dict[str, "DatabaseContext"]:
    """One context per configured database, each with a pool created at its first use."""
    from pg_mcp.explore import DatabaseContext

    return {
        name: DatabaseContext.connect_later(name, settings, config.notes.get(name, NO_NOTES))
        for name, settings in config.databases.items()
    }


def build_server(
    config: ServerConfig, contexts: "Mapping[str, DatabaseContext] | None" = None
) -> PgMcpServer:
    """The MCP server over the configured databases, for every command and for the tests.

    Nothing a call needs is done before `initialize` is answered (over stdio; at once over the other
    transports): then, beside serving, a worker thread makes the databases and loads the SQL parsers
    while each pool opens, so that `initialize` waits neither on those imports nor on the network.
    A call that comes first makes what it needs itself.
    """
    names = list(contexts if contexts is not None else config.databases)
    settings_of = {
        name: contexts[name].settings if contexts is not None else config.databases[name] for name in names
    }
    notes_of = {
        name: contexts[name].notes if contexts is not None else config.notes.get(name, NO_NOTES)
        for name in names
    }

    def instructions(visible: Sequence[str]) -> str:
        return _instructions(
            visible,
            {name: settings_of[name].description for name in visible if name in settings_of},
            any(notes_of[name].glossary for name in visible if name in notes_of),
        )

    def make_databases() -> Databases:
        return Databases(contexts if contexts is not None else open_contexts(config))

    async def connect(context: "DatabaseContext") -> None:
        """Open one pool and report its role's risks; a database that is down is said once, by name."""
        from pg_mcp.database.role_report import log_role_risks

        try:
            await context.db.connect()
        except PgMcpError as exc:
            log.error("database %s not reachable yet: %s", context.name, exc)
            return
        except Exception as exc:  # serve anyway: each call reports what is wrong and retries
            log.error("database %s not reachable yet (%s)", context.name, type(exc).__name__)
            return
        log.info("connected to %s (%s)", context.name, context.settings.safe_dsn)
        await log_role_risks(context.db, context.catalog)

    async def warm_up() -> None:
        """After the `initialize` answer: the databases, then the parsers and every pool at once."""
        if app.answered is not None:
            await app.answered.wait()
        databases = await app.open_databases()
        await asyncio.gather(
            asyncio.to_thread(_load_for_calls), *(connect(context) for context in databases.contexts.values())
        )

    @asynccontextmanager
    async def lifespan(_: MCPServer[None]) -> AsyncIterator[None]:
        warming = asyncio.create_task(warm_up())
        try:
            yield None
        finally:
            warming.cancel()
            await asyncio.wait([warming], timeout=1)
            await app.close_databases()

    app = PgMcpServer(
        make_databases,
        names,
        instructions,
        name="pg-mcp",
        title="PostgreSQL (read-only)",
        version=__version__,
        lifespan=lifespan,
        log_level=config.log_level,
        cache_hints=CACHE_HINTS,
    )

    async def run(
        tool: str,
        database: str | None,
        arguments: dict[str, Any],
        call: "Callable[[DatabaseContext], Awaitable[ToolOutput]]",
        request: Context[None, Any] | None,
    ) -> CallToolResult:
        """One tool call: pick the database, run (reporting progress when asked), audit, and convert any
        error into a tool error."""
        try:
            databases = await app.open_databases()
            try:
                context = databases.get(database)
                _check_offered(tool, context.name, app.offered(tool, tuple(databases.visible())))
            except PgMcpError as exc:  # audited at the edge too: who asked for what they may not use
                audit_refusal(tool, database, arguments, exc)
                raise
            async with progress_reported(request):
                output = await audited(tool, context.name, arguments, lambda: call(context), _row_count)
        except Exception as exc:
            return tool_error(exc)
        return _tool_result(output)

    _add_tools(app, config, names, settings_of, run)
    _add_resources(app, any(notes.glossary for notes in notes_of.values()))
    _add_prompts(app)
    _describe_database_argument(app, names)
    _compact_schemas(app)
    return app


def _add_tools(
    app: PgMcpServer,
    config: ServerConfig,
    names: Sequence[str],
    settings_of: Mapping[str, Settings],
    run: Run,
) -> None:
    """pg-mcp's tools, the insight tools when turned on, and the operator's; each registered when at
    least one database offers it (a tool no database offers is not there at all)."""
    seen: set[str] = set()
    for tool in (*TOOLS, *_insight_tools(config), *map(operator_tool, config.tools)):
        if tool.name in seen:
            raise ConfigError(
                f"{config.source}: the tool {tool.name} has the name of one of pg-mcp's own tools.",
                "Give it another name in its [tools.NAME] table.",
            )
        seen.add(tool.name)
        runs_on = names if tool.database is None else [tool.database]
        offers = tuple(
            name for name in runs_on if name in settings_of and settings_of[name].offers(tool.name)
        )
        if offers:
            app.add_tool(bind_database(tool, run), name=tool.name, annotations=READ_ONLY)
            app.tool_offers[tool.name] = offers


def _add_resources(app: PgMcpServer, glossary: bool) -> None:
    """The overview, the glossary (when there is one), one resource per table, and completions of
    their names."""

    @app.resource(
        OVERVIEW_URI,
        name="database",
        title="Database overview",
        description="Server version, database size, extensions and schemas with table counts.",
        mime_type="text/plain",
    )
    async def database_resource() -> str:
        try:
            databases = await app.open_databases()
            caller_default = next(iter(databases.visible()), "none")
            return await audited("resource:overview", caller_default, {}, databases.overview)
        except PgMcpError as exc:
            raise request_error(exc) from None

    if glossary:

        @app.resource(
            GLOSSARY_URI,
            name="glossary",
            title="Glossary",
            description=GLOSSARY_DESCRIPTION,
            mime_type="text/plain",
        )
        async def glossary_resource() -> str:
            try:
                databases = await app.open_databases()
                described = next(iter(databases.with_glossary()), "none")
                return await audited("resource:glossary", described, {}, databases.glossary)
            except PgMcpError as exc:
                raise request_error(exc) from None

    template = MULTI_TABLE_TEMPLATE if app.several else SINGLE_TABLE_TEMPLATE

    async def read_table(database: str | None, schema: str, table: str) -> str:
        try:
            context = (await app.open_databases()).get(database)
            output = await audited(
                "resource:table",
                context.name,
                {"schema": schema, "table": table},
                lambda: explore.describe_table(context, quoted(table), schema=quoted(schema)),
            )
        except PgMcpError as exc:
            raise request_error(exc) from None
        return output.text

    description = "Columns, keys, relationships and size of one table or view (same as describe_table)."
    if app.several:

        @app.resource(
            template, name="table", title="Table description", description=description, mime_type="text/plain"
        )
        async def table_in_database_resource(database: str, schema: str, table: str) -> str:
            return await read_table(database, schema, table)

    else:

        @app.resource(
            template, name="table", title="Table description", description=description, mime_type="text/plain"
        )
        async def table_resource(schema: str, table: str) -> str:
            return await read_table(None, schema, table)

    @app.completion()  # type: ignore[untyped-decorator, no-untyped-call]  # the SDK leaves it unannotated
    async def complete(
        ref: PromptReference | ResourceTemplateReference, argument: CompletionArgument, context: Any
    ) -> Completion | None:
        if not isinstance(ref, ResourceTemplateReference) or ref.uri != template:
            return None
        known = (context.arguments if context is not None else None) or {}
        try:
            values = await (await app.open_databases()).complete(argument.name, argument.value, known)
        except PgMcpError:
            values = []
        return Completion(values=values, total=len(values), has_more=len(values) >= 100)


def _add_prompts(app: PgMcpServer) -> None:
    @app.prompt(title="Explore this database")
    def explore_database() -> str:
        """How to get oriented in an unfamiliar database with these tools."""
        return EXPLORE_PROMPT

    @app.prompt(title="Answer a question with SQL")
    def answer_question(
        question: Annotated[str, Field(description="The question, in plain language.")],
    ) -> str:
        """A disciplined workflow for answering one question from the data, showing the SQL used."""
        return ANSWER_PROMPT.format(question=question)


def _check_offered(tool: str, database: str, offers: Sequence[str]) -> None:
    """Refuse a call of a tool on a database whose operator does not offer it there, naming the
    caller's databases that do."""
    if database in offers:
        return
    raise InvalidArgumentError(
        f"The tool {tool} is not offered on the database {database}.",
        f"Databases that offer it: {', '.join(offers)}; pass database={offers[0]}."
        if offers
        else "No database you may use offers it.",
    )


def _load_for_calls() -> None:
    """Load what calls need beyond the databases (in the warm-up thread): the tools' modules, and the
    guard's worker processes with their SQL parsers, so that the first call finds them ready."""
    from pg_mcp.guard import start_workers

    explore.load()
    start_workers()


def _insight_tools(config: ServerConfig) -> tuple[Tool, ...]:
    """The DBA insight tools, when a served database turns them on (imported only then: they load the
    driver)."""
    if not any(settings.insight for settings in config.databases.values()):
        return ()
    from pg_mcp.server.insight_tools import INSIGHT_TOOLS

    return INSIGHT_TOOLS


def _instructions(names: Sequence[str], descriptions: Mapping[str, str | None], glossary: bool) -> str:
    """The server's instructions for a caller who may use `names`: which database is for what (the
    operator's descriptions), and where the glossary is when there is one."""
    text = INSTRUCTIONS
    if len(names) < 2:
        described = descriptions.get(names[0]) if names else None
        text += f"\nThis database: {_one_line(described)}" if described else ""
    else:
        text += (
            f"\nDatabases: {', '.join(names)}. Every tool takes database=NAME; without it, "
            f"{names[0]} is used. Table resources are postgres://DATABASE/SCHEMA/TABLE."
        )
        text += "".join(
            f"\n- {name}: {_one_line(described)}" for name in names if (described := descriptions.get(name))
        )
    if glossary:
        text += f"\nBusiness terms are defined in the resource {GLOSSARY_URI}; search_schema finds them too."
    return text


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _compact_schemas(app: PgMcpServer) -> None:
    for tool in app._tool_manager.list_tools():
        tool.parameters = without_titles(tool.parameters)
        if tool.output_schema is not None:
            tool.output_schema = compact_output_schema(tool.output_schema)


def _describe_database_argument(app: PgMcpServer, names: Sequence[str]) -> None:
    """Every tool's `database` argument lists the configured names and the default; with one database
    the argument is left out of the schemas altogether (nothing to choose, fewer tokens)."""
    for tool in app._tool_manager.list_tools():
        tool.parameters = with_database_argument(tool.parameters, names)


def with_database_argument(schema: dict[str, Any], names: Sequence[str]) -> dict[str, Any]:
    """A tool's input schema whose `database` argument offers exactly `names` (none with fewer than two)."""
    properties = dict(schema.get("properties", {}))
    if "database" not in properties:
        return schema
    if len(names) < 2:
        properties.pop("database")
    else:
        properties["database"] = {
            "anyOf": [{"type": "string", "enum": list(names)}, {"type": "null"}],
            "default": None,
            "description": f"Which database: {', '.join(names)}; leave out for {names[0]}.",
        }
    return {**schema, "properties": properties}
