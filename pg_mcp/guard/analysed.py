"""The verdict on PostgreSQL's own analysis of a statement, before anything is planned.

When the executor prepares a statement (the Parse message), the connected server parses, analyses and
rewrites it with its own grammar and catalog, and sends back that tree (`debug_print_rewritten`).
Parse analysis resolves every name, operator, cast, domain coercion and type, the rewriter expands
views and adds row-level-security quals, and none of it runs operator-written code; planning, which
can (it folds and evaluates functions), only starts at Bind, after this verdict. So the question
"which code can this statement reach" is answered on the server's reading of the text, object by
object (OIDs, not names), and so is "which stored columns does it read":

- code: every function, operator and type the tree holds is looked up in the catalog's reach model
  (`CatalogReach`, read by `pg_mcp.database.reach`): operator-written functions the operator has not
  allowed, operators and casts they implement, domains whose constraints call them, types whose I/O or
  comparison they implement, and relations whose indexes, partition keys or foreign-data wrapper
  do. In most databases the model is empty and nothing is refused here.
- columns: the columns each relation really contributes (following subqueries, views, joins and
  correlated references the way PostgreSQL resolved them; `t.*` and whole-row references read every
  column) are compared, by relation OID and column number, with the hidden columns, the secret
  columns (other sessions' SQL, password hashes), and the catalog columns that hold text about
  objects while schema or table limits are active.
- planning: a statement whose tree holds more range-table entries than the planner should be given
  (views expanded) is refused before it is planned.

The OIDs are found in the tree's text (fast); the tree itself is read only when columns must be
followed.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from pg_mcp.errors import GuardError
from pg_mcp.guard.node_dump import DumpError, Node, Value, read
from pg_mcp.guard.rules import Rule

#: The most range-table entries (views expanded) a statement may give the planner.
MAX_RANGE_ENTRIES = 1_000
#: OIDs below this are PostgreSQL's own objects (FirstNormalObjectId): always in the model's scope.
FIRST_USER_OID = 16384

_FUNCTION_FIELDS = frozenset(
    {"funcid", "aggfnoid", "winfnoid", "opfuncid", "tsmhandler", "hashfuncid", "negfuncid"}
)
_OPERATOR_FIELDS = frozenset({"opno", "eqop", "sortop", "opnos"})
#: Fields so named that hold a kind, not a type.
_KINDS = frozenset({"commandType", "jointype", "subLinkType", "nulltesttype", "booltesttype"})
_RELATION_FIELD = "relid"
#: RangeTblEntry kinds (RTEKind) that matter for column resolution.
_RTE_RELATION, _RTE_SUBQUERY, _RTE_JOIN, _RTE_FUNCTION, _RTE_GROUP = 0, 1, 2, 3, 9
#: Query fields that hold expressions evaluated for the query's rows (the target list is separate).
_QUERY_EXPRESSIONS = ("jointree", "havingQual", "limitOffset", "limitCount", "windowClause")
#: Fields of a range-table entry that hold expressions of the enclosing query.
_RTE_EXPRESSIONS = ("functions", "tablefunc", "values_lists", "tablesample")


@dataclass(frozen=True)
class CatalogReach:
    """What one database's catalog makes reachable, by OID, with a description for each refusal.

    `known` holds every function, operator, type and relation from FIRST_USER_OID up (reachable or
    not): a statement naming one the model does not know means the catalog changed since it was read.
    """

    functions: Mapping[int, str] = field(default_factory=dict)
    operators: Mapping[int, str] = field(default_factory=dict)
    types: Mapping[int, str] = field(default_factory=dict)
    relations: Mapping[int, str] = field(default_factory=dict)
    known: frozenset[int] = frozenset()
    hidden: Mapping[int, Mapping[int, str]] = field(default_factory=dict)
    """Relation OID -> hidden column numbers -> "schema.table.column"."""
    catalog_text: Mapping[int, Mapping[int, str]] = field(default_factory=dict)
    """Catalog relation OID -> column numbers holding text about objects -> "pg_proc.prosrc"."""
    catalog_text_functions: Mapping[int, str] = field(default_factory=dict)
    """Built-in functions that return text stored about objects (comments, definitions)."""
    secret_columns: Mapping[int, tuple[str, str, str]] = field(default_factory=dict)
    """Set-returning function -> (its name, its secret column, the secret group), for groups not allowed."""
    secret_catalog_columns: Mapping[int, tuple[int, str, str]] = field(default_factory=dict)
    """Catalog relation -> (column number, "pg_authid.rolpassword", secret group), for groups not allowed."""

    def is_stale_for(self, oids: Iterator[int]) -> bool:
        """Whether the tree names an operator-written object this model has never seen."""
        return any(oid >= FIRST_USER_OID and oid not in self.known for oid in oids)


@dataclass
class AnalysedStatement:
    """The objects PostgreSQL's tree refers to, found in its text; the tree itself is read only when a
    rule needs to follow columns (hidden columns, secrets by column, catalog text under limits)."""

    text: str
    functions: set[int] = field(default_factory=set)
    operators: set[int] = field(default_factory=set)
    types: set[int] = field(default_factory=set)
    relations: set[int] = field(default_factory=set)
    range_entries: int = 0
    """Tables, views (expanded), subqueries, functions and joins: what the planner will have to plan."""
    _queries: list[Node] | None = None

    def oids(self) -> Iterator[int]:
        yield from self.functions
        yield from self.operators
        yield from self.types
        yield from self.relations

    @property
    def queries(self) -> list[Node]:
        if self._queries is None:
            self._queries = _read_queries(self.text)
        return self._queries


#: A field with a number, or an OID list, as value. Fields follow whitespace and are never escaped, and
#: every token that could hold a caller's text (names, strings) has its spaces escaped, so a caller
#: cannot write one; an extra match would only add an object to judge, never hide one. A field's name
#: is taken whole (`\w++`: giving characters back could never let a space or newline follow), which
#: spares the matcher its retries at every field whose value is not a number.
_NUMBER_FIELD = re.compile(r":(\w++)[ \n](\d+)")
_OID_LIST = re.compile(r":(\w++)[ \n]\(o((?:[ \n]\d+)*)[ \n]*\)")
#: What every OID list starts with: a tree without it has none to look for.
_OID_LIST_START = "(o"
_TYPE_ENDINGS = ("type", "typid", "typeid", "types", "typeids")


def analyse(dump: str) -> AnalysedStatement:
    """Collect every object the rewritten tree PostgreSQL sent refers to (the tree is read later, if at all)."""
    statement = AnalysedStatement(dump, range_entries=dump.count("{RANGETBLENTRY"))
    if "{QUERY" not in dump:
        raise _unreadable("no query in it")
    kinds = _FIELD_KINDS
    found: dict[str, set[int]] = {"functions": set(), "operators": set(), "types": set(), "relations": set()}
    for name, value in _NUMBER_FIELD.findall(dump):
        kind = kinds.get(name)
        if kind is None and name not in kinds:
            kind = kinds[name] = _kind_of(name)
        if kind is not None:
            found[kind].add(int(value))
    for name, values in _OID_LIST.findall(dump) if _OID_LIST_START in dump else ():
        kind = _kind_of(name)
        if kind is not None:
            found[kind].update(int(value) for value in values.split())
    statement.functions, statement.operators = found["functions"], found["operators"]
    statement.types, statement.relations = found["types"], found["relations"]
    return statement


#: Field name -> the set its OIDs go to, or None: filled as names are met (a few dozen in all).
_FIELD_KINDS: dict[str, str | None] = {}


def _kind_of(name: str) -> str | None:
    if name in _FUNCTION_FIELDS:
        return "functions"
    if name in _OPERATOR_FIELDS:
        return "operators"
    if name == _RELATION_FIELD:
        return "relations"
    if name.lower().endswith(_TYPE_ENDINGS) and name not in _KINDS:
        return "types"
    return None


def _read_queries(dump: str) -> list[Node]:
    try:
        values = read(dump)
    except DumpError as error:
        raise _unreadable(str(error)) from None
    if len(values) == 1 and isinstance(values[0], list):  # the list of the rewritten queries
        values = values[0]
    queries = [value for value in values if isinstance(value, Node) and value.tag == "QUERY"]
    if not queries or len(queries) != len(values):
        raise _unreadable("no query in it")
    return queries


#: pg_statistic, whose sample values are catalog text unless the statement's statistics are allowed.
PG_STATISTIC = 2619


def check(
    statement: AnalysedStatement, reach: CatalogReach, *, limits_active: bool, statistics: bool = False
) -> None:
    """Refuse a statement that can reach operator-written code the operator has not allowed, reads a
    hidden column, or (under schema or table limits) reads text the catalog stores about objects; or
    whose planning alone would take more than a bounded amount of memory."""
    check_planning_size(statement.range_entries)
    for oids, items, kind in (
        (statement.functions, reach.functions, "function"),
        (statement.operators, reach.operators, "operator"),
        (statement.types, reach.types, "type"),
        (statement.relations, reach.relations, "relation"),
    ):
        for oid in sorted(oids):
            if oid in items:
                raise _reaches(kind, items[oid])
    secret_reads = not statement.functions.isdisjoint(
        reach.secret_columns
    ) or not statement.relations.isdisjoint(reach.secret_catalog_columns)
    if not reach.hidden and not secret_reads and not (limits_active and reach.catalog_text):
        return
    reads = _Reads(reach, limits_active, statistics)
    for query in statement.queries:
        reads.query(query, None, [])


def check_planning_size(range_entries: int) -> None:
    """Refuse a statement whose planning alone would take too much memory, before it is planned."""
    if range_entries > MAX_RANGE_ENTRIES:
        raise GuardError(
            Rule.TOO_COMPLEX,
            f"With its views expanded the statement reads {range_entries:,} tables, subqueries, functions and "
            f"joins; the limit is {MAX_RANGE_ENTRIES:,}, because planning grows with them (a thousand UNION "
            "branches over information_schema take gigabytes just to plan).",
            "Split it into several smaller queries, or query the catalog tables instead of large views.",
        )


def _reaches(kind: str, description: str) -> GuardError:
    return GuardError(
        Rule.USER_DEFINED,
        f"PostgreSQL resolves this statement to the {kind} {description}, which runs code written in this "
        "database that the operator has not allowed; it could run while the statement is planned, so nothing "
        "was run.",
        "Use built-in types, operators and functions explicitly (for example compare a text column with a "
        "quoted value, or cast with ::integer), query the tables under a view, or ask the operator to allow "
        "the function (PG_MCP_ALLOW_FUNCTIONS=schema.name).",
    )


def _unreadable(why: str) -> GuardError:
    return GuardError(
        Rule.PARSE,
        f"PostgreSQL's analysis of the statement could not be read ({why}), so it was not run.",
        "Simplify the statement; if this persists, report it with the statement.",
    )


@dataclass
class _Scope:
    """One query level while columns are resolved: its range table and what its subqueries must give."""

    query: Node
    rtable: list[Value]
    wanted: dict[int, set[int]] = field(default_factory=dict)
    """Range-table index of a subquery -> its target entries referenced (0: all)."""
    done: dict[int, set[int]] = field(default_factory=dict)
    """Range-table index of a subquery -> target entries already followed into it."""


class _Reads:
    """Follows each column reference to the stored column it reads, as PostgreSQL resolved it."""

    def __init__(self, reach: CatalogReach, limits_active: bool, statistics: bool = False) -> None:
        self.reach = reach
        self.limits_active = limits_active
        self.statistics = statistics

    def query(self, query: Node, wanted: set[int] | None, outer: list[_Scope]) -> None:
        """Check a query whose target entries `wanted` (None: all) are used by what encloses it."""
        rtable = query.get("rtable")
        scope = _Scope(query, rtable if isinstance(rtable, list) else [])
        stack = [*outer, scope]
        for entry in _items(query.get("targetList")):
            if isinstance(entry, Node) and (
                wanted is None
                or entry.int("resno") in wanted
                or entry.get("resjunk") == "true"
                or entry.int("ressortgroupref")
            ):
                self.expression(entry.get("expr"), stack)
        for name in _QUERY_EXPRESSIONS:
            self.expression(query.get(name), stack)
        for rte in scope.rtable:
            if isinstance(rte, Node) and rte.int("rtekind") not in (_RTE_SUBQUERY, _RTE_JOIN, _RTE_GROUP):
                for name in _RTE_EXPRESSIONS:
                    self.expression(rte.get(name), stack, rows_read=name == "functions")
        for cte in _items(query.get("cteList")):
            if isinstance(cte, Node) and isinstance(cte.get("ctequery"), Node):
                self.query(cte.get("ctequery"), None, stack)  # type: ignore[arg-type]
        for index in _set_operation_leaves(query.get("setOperations")):
            scope.wanted.setdefault(index, set()).add(0)
        for index in range(len(scope.rtable), 0, -1):  # LATERAL refers only to entries before it
            rte = scope.rtable[index - 1]
            if isinstance(rte, Node) and rte.int("rtekind") == _RTE_SUBQUERY:
                self._follow(scope, index, stack, scope.wanted.get(index, set()))

    def _follow(self, scope: _Scope, index: int, stack: list[_Scope], wanted: set[int]) -> None:
        """Check the subquery at `index` for the target entries not yet followed (its quals once)."""
        first = index not in scope.done
        done = scope.done.setdefault(index, set())
        if 0 in done or (not first and wanted <= done):
            return
        subquery = scope.rtable[index - 1].get("subquery")  # type: ignore[union-attr]
        done.update(wanted)
        if isinstance(subquery, Node):  # `stack` ends with `scope`, the subquery's enclosing level
            self.query(subquery, None if 0 in wanted else set(wanted), stack)

    def expression(self, value: Value, stack: list[_Scope], *, rows_read: bool = False) -> None:
        """Every column read and catalog-text call in an expression (subqueries inside it included).

        `rows_read`: the range table's functions, whose rows are then read column by column (a secret
        column of theirs is judged where it is read, not at the call)."""
        if rows_read:
            for function in _items(value):
                call = function.get("funcexpr") if isinstance(function, Node) else None
                if isinstance(call, Node) and call.tag == "FUNCEXPR":
                    self.expression(call.get("args"), stack)
                else:
                    self.expression(function, stack)
            return
        pending: list[Value] = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, list):
                pending.extend(item)
                continue
            if not isinstance(item, Node):
                continue
            if item.tag == "VAR":
                self._variable(item, stack)
            elif item.tag == "QUERY":
                self.query(item, None, stack)
            else:
                if item.tag == "FUNCEXPR":
                    self._call(item.int("funcid"))
                pending.extend(item.fields.values())

    def _call(self, funcid: int) -> None:
        """A call whose whole result is read: a secret column of it with the rest."""
        secret = self.reach.secret_columns.get(funcid)
        if secret:
            raise _secret(*secret)
        described = self.reach.catalog_text_functions.get(funcid) if self.limits_active else None
        if described:
            raise _catalog_text(f"{described}()")

    def _variable(self, var: Node, stack: list[_Scope]) -> None:
        level = len(stack) - 1 - var.int("varlevelsup")
        index, column = var.int("varno"), var.int("varattno")
        if not 0 <= level < len(stack) or not 1 <= index <= len(stack[level].rtable):
            return  # a special varno (OUTER/INNER) never appears before planning
        scope = stack[level]
        rte = scope.rtable[index - 1]
        if not isinstance(rte, Node):
            return
        kind = rte.int("rtekind", -1)
        if kind == _RTE_RELATION:
            self._stored(rte.int("relid"), column)
        elif kind == _RTE_SUBQUERY:
            wanted = {column} if column > 0 else {0}
            scope.wanted.setdefault(index, set()).update(wanted)
            if index in scope.done:  # already followed: follow the new entries now
                self._follow(scope, index, stack[: level + 1], wanted)
        elif kind == _RTE_FUNCTION:
            self._function_column(rte, column)
        elif kind in (_RTE_JOIN, _RTE_GROUP):
            aliases = _items(rte.get("joinaliasvars" if kind == _RTE_JOIN else "groupexprs"))
            chosen = aliases if column <= 0 else aliases[column - 1 : column]
            for alias in chosen:
                self.expression(alias, stack[: level + 1])

    def _function_column(self, rte: Node, column: int) -> None:
        """A column of a function's rows: refused when it is the function's secret one (or whole rows)."""
        functions = _items(rte.get("functions"))
        calls = [f.get("funcexpr") for f in functions if isinstance(f, Node)]
        for call in calls:
            secret = self.reach.secret_columns.get(call.int("funcid")) if isinstance(call, Node) else None
            if secret is None:
                continue
            eref = rte.get("eref")
            names = _items(eref.get("colnames")) if isinstance(eref, Node) else []
            name = names[column - 1] if 0 < column <= len(names) else None
            if len(calls) > 1 or column <= 0 or not isinstance(name, str) or name.strip('"') == secret[1]:
                raise _secret(*secret)

    def _stored(self, relid: int, column: int) -> None:
        if column < 0:
            return  # system columns: ctid, xmin ...
        secret = self.reach.secret_catalog_columns.get(relid)
        if secret is not None and column in (0, secret[0]):
            raise GuardError(
                Rule.SECRET,
                f"The statement reads {secret[1]} (or whole rows holding it), which is refused: it holds passwords.",
                f"Select the other columns by name. An operator can allow it with PG_MCP_ALLOW_SECRETS={secret[2]}.",
            )
        hidden = self.reach.hidden.get(relid, {})
        if hidden and (column == 0 or column in hidden):
            name = hidden.get(column) or next(iter(hidden.values()))
            raise GuardError(
                Rule.HIDDEN_COLUMN,
                f"The statement reads the column {name}, which the operator has hidden"
                + (" (through a whole-row reference or *)." if column == 0 else "."),
                "List the columns you need by name, leaving out hidden ones.",
            )
        if self.limits_active and not (self.statistics and relid == PG_STATISTIC):
            text = self.reach.catalog_text.get(relid, {})
            if text and (column == 0 or column in text):
                raise _catalog_text(text.get(column) or next(iter(text.values())))


def _secret(function: str, column: str, group: str) -> GuardError:
    return GuardError(
        Rule.SECRET,
        f"The statement reads the {column} column of {function}() (or whole rows of it), which is refused: it "
        "shows what other sessions are running.",
        f"Select the other columns by name. An operator can allow it with PG_MCP_ALLOW_SECRETS={group}.",
    )


def _catalog_text(what: str) -> GuardError:
    return GuardError(
        Rule.CATALOG_TEXT,
        f"The statement reads {what}: text the catalog stores about objects (comments, definitions, defaults, "
        "source code), which can belong to schemas and tables outside this server's limits.",
        "Use describe_table, list_tables and search_schema, which show comments and definitions for the "
        "tables you may read; names, types and keys in pg_catalog stay readable.",
    )


def _nodes(root: Value) -> Iterator[Node]:
    pending: list[Value] = [root]
    while pending:
        item = pending.pop()
        if isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, Node):
            yield item
            pending.extend(item.fields.values())


def _items(value: Value) -> list[Value]:
    return value if isinstance(value, list) else []


def _oids(value: Value) -> Iterator[int]:
    for text in value if isinstance(value, list) else [value]:
        if isinstance(text, str) and text.isdigit():
            yield int(text)


def _set_operation_leaves(value: Value) -> Iterator[int]:
    for node in _nodes(value):
        if node.tag == "RANGETBLREF":
            yield node.int("rtindex")
