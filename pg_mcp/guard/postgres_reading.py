"""The verdict on PostgreSQL's own reading of the statement.

The text is parsed by libpg_query (through pglast): PostgreSQL's lexer and grammar compiled into
this process. Comments, dollar quotes, `E''` strings, `U&` escapes, identifier folding and operator
splitting are therefore exactly PostgreSQL's, so nothing can hide from this stage the way a
comment PostgreSQL nests differently hid a call from sqlglot. The rules then walk that tree:

- exactly one statement, a SELECT / VALUES / set operation of them, with no INTO and no row lock;
- every node is of a kind known to be part of a read (an allowlist: a data-modifying CTE, a
  parameter or any syntax added later is refused by default);
- every function call, operator, cast target and relation is checked by the name PostgreSQL will
  resolve (functions by allowlist; no user-defined function, operator or cast shadowing a
  built-in; no secrets; size arguments of amplifying functions bounded; no input built by
  aggregation or amplification fed into work PostgreSQL cannot interrupt).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeAlias

from pglast import parser as pg_parser
from pglast.parser import ParseError as PgParseError

from pg_mcp.errors import GuardError
from pg_mcp.guard import refusals, secrets
from pg_mcp.guard.catalog_rows import reads_only_harmless_settings
from pg_mcp.guard.operators import BUILTIN_OPERATORS
from pg_mcp.guard.policy import GuardPolicy
from pg_mcp.guard.rules import Rule

#: Node kinds a read is made of. Anything else (InsertStmt in a CTE, IntoClause, LockingClause,
#: ParamRef, CurrentOfExpr, MergeSupportFunc ...) is refused by default.
READ_NODES = frozenset(
    [
        "SelectStmt",
        "ResTarget",
        "ColumnRef",
        "A_Const",
        "A_Star",
        "A_Expr",
        "A_Indirection",
        "A_Indices",
        "A_ArrayExpr",
        "BoolExpr",
        "FuncCall",
        "NamedArgExpr",
        "TypeCast",
        "CollateClause",
        "CaseExpr",
        "CaseWhen",
        "CoalesceExpr",
        "MinMaxExpr",
        "NullTest",
        "BooleanTest",
        "SubLink",
        "RowExpr",
        "SQLValueFunction",
        "GroupingFunc",
        "GroupingSet",
        "WindowDef",
        "SortBy",
        "RangeVar",
        "RangeSubselect",
        "RangeFunction",
        "RangeTableSample",
        "JoinExpr",
        "WithClause",
        "CommonTableExpr",
        "CTESearchClause",
        "CTECycleClause",
        "ColumnDef",
        "List",
        "String",
        "Integer",
        "Float",
        "Boolean",
        "BitString",
        "XmlExpr",
        "XmlSerialize",
        "RangeTableFunc",
        "RangeTableFuncCol",
        "JsonFormat",
        "JsonReturning",
        "JsonValueExpr",
        "JsonOutput",
        "JsonKeyValue",
        "JsonObjectConstructor",
        "JsonArrayConstructor",
        "JsonArrayQueryConstructor",
        "JsonAggConstructor",
        "JsonObjectAgg",
        "JsonArrayAgg",
        "JsonIsPredicate",
        "JsonParseExpr",
        "JsonScalarExpr",
        "JsonSerializeExpr",
        "JsonFuncExpr",
        "JsonArgument",
        "JsonBehavior",
        "JsonTable",
        "JsonTablePathSpec",
        "JsonTableColumn",
    ]
)

#: Subqueries inside subqueries: far beyond any real query, and each level costs the planner.
MAX_QUERY_NESTING = 64
#: A_Expr kinds whose name is the keyword (BETWEEN, NOT BETWEEN SYMMETRIC ...), not an operator.
_BETWEEN_KINDS = ("AEXPR_BETWEEN", "AEXPR_NOT_BETWEEN")
_TABLESAMPLE_METHODS = frozenset({"system", "bernoulli"})

#: Functions whose size arguments multiply what they produce: name -> positions of those arguments.
AMPLIFIERS: dict[str, tuple[int, ...]] = {"repeat": (1,), "lpad": (1,), "rpad": (1,), "array_fill": (1,)}
#: The most characters or elements a statement may ask amplifying functions to make, all calls together
#: (nested calls multiply; repeat() counts the characters of what it copies).
MAX_AMPLIFIED = 100_000
#: The characters assumed of a value that is not a constant (a column, an expression) copied by repeat():
#: its real size is known only once it is read.
ASSUMED_VALUE_CHARS = 100
_FORMAT_WIDTH = re.compile(r"%(?:\d+\$)?-?(\*|\d+)")

#: Work PostgreSQL performs without checking for interrupts, whose time grows faster than its input:
#: neither statement_timeout nor pg_terminate_backend stops it once started.
UNINTERRUPTIBLE_FUNCTIONS = frozenset(
    {"translate", "xpath", "xpath_exists", "xmlexists", "normalize", "is_normalized"}
)
#: Searches that never check for interrupts either, but whose time grows with haystack x needle: refused
#: only beside an aggregate that builds their input, or amplifiers asked for more than SEARCH_INPUT_CHARS.
SEARCH_FUNCTIONS = frozenset(
    {"strpos", "position", "replace", "split_part", "string_to_array", "array_position", "array_positions"}
)
SEARCH_INPUT_CHARS = 10_000
_AGGREGATE_BUILDERS = frozenset(
    {
        "array_agg",
        "string_agg",
        "json_agg",
        "jsonb_agg",
        "json_object_agg",
        "jsonb_object_agg",
        "xmlagg",
        "range_agg",
    }
)
UNINTERRUPTIBLE_OPERATORS = frozenset({"&&", "<@", "@>", "<->"})
#: What can build a big input for that work inside one statement.
_BUILDERS = _AGGREGATE_BUILDERS | {
    "generate_series", "array_fill", "repeat", "lpad", "rpad", "string_to_array", "regexp_split_to_array", "unnest",
}  # fmt: skip
_MAX_XPATH_LENGTH = 200


def parse(text: str, indent: int = 0) -> dict[str, Any]:
    """The one statement PostgreSQL reads in `text`: libpg_query's entry, with `stmt` (the tree),
    `stmt_location` and `stmt_len` (byte offsets of the statement in the text).

    `indent` spaces are read before the text, so every location in the tree is that much further
    on (as if the text followed something of that length); error positions are the text's own.
    """
    try:
        parsed = json.loads(pg_parser.parse_sql_json(" " * indent + text))
    except PgParseError as error:
        if "stack depth" in str(error.args[0]) or "memory exhausted" in str(error.args[0]):
            raise RecursionError from None
        raise refusals.syntax(_position(text, error, indent), error.args[0]) from None
    statements = parsed.get("stmts", [])
    if not statements:
        raise refusals.empty()
    if len(statements) > 1:
        raise refusals.multiple_statements()
    statement: dict[str, Any] = statements[0]
    return statement


def parameter_numbers(text: str) -> set[int]:
    """The `$n` PostgreSQL reads in `text` (an operator's tool must use each parameter it declares)."""
    numbers: set[int] = set()
    stack: list[Any] = [parse(text)["stmt"]]
    while stack:
        value = stack.pop()
        if isinstance(value, dict):
            reference = value.get("ParamRef")
            if isinstance(reference, dict) and isinstance(reference.get("number"), int):
                numbers.add(reference["number"])
            stack.extend(value.values())
        elif isinstance(value, list):
            stack.extend(value)
    return numbers


def _position(text: str, error: PgParseError, indent: int) -> str:
    location = error.args[1] - indent if len(error.args) > 1 and isinstance(error.args[1], int) else None
    if location is None and "end of input" in str(error.args[0]):  # point at the last character
        location = max(len(text.rstrip().encode()) - 1, 0)
    if not isinstance(location, int) or not 0 <= location <= len(text.encode()):
        return ""
    before = text.encode()[:location].decode(errors="ignore")
    line = before.count("\n") + 1
    return f" at line {line}, column {len(before) - (before.rfind(chr(10)) + 1) + 1}"


def check(statement: dict[str, Any], policy: GuardPolicy) -> bool:
    """Apply every rule to PostgreSQL's tree of one statement; raise GuardError on the first refusal.
    Returns whether the statement reads pg_settings only for harmless settings (`catalog_rows`)."""
    kind = next(iter(statement))
    if kind != "SelectStmt":
        shown = kind.removesuffix("Stmt").upper() or kind
        raise refusals.not_read_only(shown, f"PostgreSQL reads a {kind}")
    harmless_settings = reads_only_harmless_settings(statement)
    checker = _Checker(policy, harmless_settings=harmless_settings)
    checker.walk(statement)
    checker.finish()
    return harmless_settings


@dataclass
class _Checker:
    policy: GuardPolicy
    harmless_settings: bool = False
    """pg_settings is read only for harmless settings (pg_mcp.guard.catalog_rows)."""
    amplified: int = 0
    uninterruptible: str | None = None
    builder: str | None = None
    search: str | None = None
    aggregate_builder: str | None = None
    activity: bool = False
    """pg_stat_activity is read: its query column is other sessions' SQL (judged exactly on PostgreSQL's
    analysis, pg_mcp.guard.analysed; here only by name, before anything reaches the server)."""
    names_query: bool = False

    def walk(self, root: Any) -> None:
        """Visit every node iteratively (no recursion limit), with the amplification factor above it."""
        stack: list[tuple[Any, int, int]] = [(root, 1, 0)]
        while stack:
            value, factor, depth = stack.pop()
            if isinstance(value, list):
                stack.extend((item, factor, depth) for item in value)
                continue
            if not isinstance(value, dict):
                continue
            for key, child in value.items():
                if key[:1].isupper():
                    factor_below = self._node(key, child, factor)
                    stack.append((child, factor_below, depth + (key == "SelectStmt")))
                    if depth > MAX_QUERY_NESTING:
                        raise refusals.too_deep("queries", MAX_QUERY_NESTING)
                elif isinstance(child, (dict, list)):
                    stack.append((child, factor, depth))

    def finish(self) -> None:
        if self.search and (self.aggregate_builder or self.amplified > SEARCH_INPUT_CHARS):
            raise GuardError(
                Rule.UNINTERRUPTIBLE,
                f"The query searches with {self.search}, which PostgreSQL cannot interrupt once started, in "
                "values it builds itself "
                + (
                    f"with {self.aggregate_builder}()"
                    if self.aggregate_builder
                    else f"of {self.amplified:,} characters"
                )
                + ": a search of a long text for a long pattern can run past every timeout.",
                "Search stored values directly, or build the values in one query and search them in another.",
            )
        if self.activity and self.names_query:
            secrets.check_function_column("pg_stat_get_activity", "query", self.policy.allowed_secrets)
        if self.uninterruptible and self.builder:
            raise GuardError(
                Rule.UNINTERRUPTIBLE,
                f"The query feeds {self.uninterruptible}, which PostgreSQL cannot interrupt once started, "
                f"in a statement that also builds values with {self.builder}(): that combination can run "
                "for hours past every timeout.",
                "Compare stored values directly, or build the values in one query and compare them in "
                "another; unnest arrays and join instead of comparing whole arrays.",
            )

    def _node(self, kind: str, node: Any, factor: int) -> int:
        """Apply the rule of a node's kind (a kind that is not a read's is refused first); returns the
        amplification factor below the node."""
        if kind == "ParamRef" and self.policy.parameters:
            return self._parameter(node, factor)
        if kind not in READ_NODES:
            raise _node_refusal(kind)
        rule = _NODE_RULES.get(kind)
        return rule(self, node, factor) if rule is not None and isinstance(node, dict) else factor

    # --- one rule per node kind (_NODE_RULES): each returns the amplification factor below the node ---

    def _parameter(self, node: Any, factor: int) -> int:
        """`$n` of an operator's tool: one of the parameters it declares."""
        number = node.get("number") if isinstance(node, dict) else None
        if not isinstance(number, int) or not 1 <= number <= self.policy.parameters:
            raise GuardError(
                Rule.SYNTAX_NOT_ALLOWED,
                f"The statement uses ${number}, but the tool declares {self.policy.parameters} parameters.",
                "Number the parameters $1, $2 … in the order they are declared.",
            )
        return factor

    def _select(self, node: dict[str, Any], factor: int) -> int:
        """A SELECT that creates a table (INTO) or locks rows is not a read."""
        if node.get("intoClause"):
            raise refusals.select_into()
        if node.get("lockingClause"):
            raise refusals.row_lock()
        return factor

    def _expression(self, node: dict[str, Any], factor: int) -> int:
        """An operator, checked by name (BETWEEN's name is its keyword); a constant exponent, bounded."""
        if not str(node.get("kind", "")).startswith(_BETWEEN_KINDS):
            names = _names(node.get("name"))
            self._operator(names)
            if names[-1:] == ["^"]:
                _bound_exponent("^", node.get("rexpr"))
        return factor

    def _numeric_constant(self, node: dict[str, Any], factor: int) -> int:
        if "fval" in node:
            _bound_numeric_literal(str(node["fval"].get("fval", "")))
        return factor

    def _cast(self, node: dict[str, Any], factor: int) -> int:
        _bound_numeric_cast(node)
        return factor

    def _sublink(self, node: dict[str, Any], factor: int) -> int:
        """`x op ANY (subquery)` names an operator."""
        if node.get("operName"):
            self._operator(_names(node.get("operName")))
        return factor

    def _sort_by(self, node: dict[str, Any], factor: int) -> int:
        """`ORDER BY x USING op` names an operator."""
        if node.get("useOp"):
            self._operator(_names(node.get("useOp")))
        return factor

    def _table_sample(self, node: dict[str, Any], factor: int) -> int:
        """A TABLESAMPLE method is a function: only the built-in ones."""
        method = _names(node.get("method"))
        if not method or method[-1].lower() not in _TABLESAMPLE_METHODS:
            raise refusals.tablesample_method(".".join(method))
        return factor

    def _indirection(self, node: dict[str, Any], factor: int) -> int:
        """`(expr).name` may call name(expr)."""
        for part in node.get("indirection", []):
            if "String" in part:
                refusals.check_field_selection(part["String"]["sval"], self.policy)
        return factor

    def _xml_table(self, node: dict[str, Any], factor: int) -> int:
        """XMLTABLE evaluates an XPath, which PostgreSQL cannot interrupt."""
        self.uninterruptible = self.uninterruptible or "XMLTABLE"
        self._xpath(node.get("rowexpr"))
        return factor

    # --- calls -------------------------------------------------------------------------------

    def _call(self, node: dict[str, Any], factor: int) -> int:
        """A call (FuncCall): allowed by name, and its work bounded; returns the factor below it."""
        parts = _names(node.get("funcname"))
        if not parts or len(parts) > 2:
            raise refusals.function_not_allowed(".".join(parts), "its name could not be resolved")
        name = parts[-1]
        schema = parts[0] if len(parts) == 2 else None
        refusals.check_function(name, schema, self.policy)
        if schema in (None, "pg_catalog"):
            secrets.check_function(name, self.policy.allowed_secrets)
        args = node.get("args", [])
        if name == "current_setting":
            secrets.check_setting(_string_constant(args[0]) if args else None, self.policy.allowed_secrets)
        if name in UNINTERRUPTIBLE_FUNCTIONS:
            self.uninterruptible = self.uninterruptible or f"{name}()"
        if name in SEARCH_FUNCTIONS:
            self.search = self.search or f"{name}()"
        if name in _AGGREGATE_BUILDERS:
            self.aggregate_builder = self.aggregate_builder or name
        if name in _BUILDERS:
            self.builder = self.builder or name
        if name in ("xpath", "xpath_exists", "xmlexists") and args:
            self._xpath(args[0])
        if name == "format" and args:
            return self._amplify(name, _format_widths(args[0]), factor)
        if name in ("power", "pow") and len(args) == 2:
            _bound_exponent(f"{name}()", args[1])
        if name in ("exp", "factorial") and args:
            _bound_exponent(f"{name}()", args[0])
        if name in AMPLIFIERS:
            sizes = [_size_argument(args, i, name) for i in AMPLIFIERS[name]]
            if name == "repeat":  # it makes copies of its first argument: count their characters
                sizes.append(_text_length(args[0]) if args else 1)
            return self._amplify(name, sizes, factor)
        return factor

    def _amplify(self, name: str, sizes: list[int], factor: int) -> int:
        product = factor
        for size in sizes:
            product *= max(size, 1)
        self.amplified += product
        if self.amplified > MAX_AMPLIFIED:
            raise GuardError(
                Rule.AMPLIFIER,
                f"The query asks {name}() and the functions around it to make about {self.amplified:,} "
                f"characters or elements; the limit is {MAX_AMPLIFIED:,} per statement.",
                "Use smaller constant sizes; pg-mcp cuts long values in results anyway.",
            )
        return product

    def _xpath(self, expression: Any) -> None:
        path = _string_constant(expression)
        if (
            path is None
            or len(path) > _MAX_XPATH_LENGTH
            or path.count("//") > 2
            or re.search(r"\[[^\]]*//", path)
        ):
            raise GuardError(
                Rule.UNINTERRUPTIBLE,
                "XPath expressions must be constant strings of at most "
                f"{_MAX_XPATH_LENGTH} characters without descendant searches inside predicates: "
                "PostgreSQL cannot interrupt XPath evaluation, which such paths make run for hours.",
                "Use a simple path such as '/root/item/@id'.",
            )

    # --- operators, relations, names ---------------------------------------------------------

    def _operator(self, names: list[str]) -> None:
        if not names:
            return
        operator = names[-1]
        if len(names) > 2 or (len(names) == 2 and names[0] != "pg_catalog"):
            raise refusals.operator_outside_catalog(".".join(names))
        if operator not in BUILTIN_OPERATORS:
            raise refusals.operator_not_builtin(operator)
        if operator in UNINTERRUPTIBLE_OPERATORS:
            self.uninterruptible = self.uninterruptible or f"the {operator} operator"

    def _relation(self, node: dict[str, Any], factor: int) -> int:
        """A table or view (RangeVar): no secrets, no other database's."""
        if node.get("catalogname"):
            raise GuardError(
                Rule.TABLE_NOT_ALLOWED,
                "Relations named with a database prefix (db.schema.table) are not accepted.",
                "Name the table as schema.table.",
            )
        name = str(node.get("relname"))
        if not (self.harmless_settings and name == "pg_settings"):
            secrets.check_relation(node.get("schemaname"), name, self.policy.allowed_secrets)
        if name in secrets.SECRET_VIEWS_READING and node.get("schemaname") in (None, "pg_catalog"):
            self.activity = True
        return factor

    def _column_ref(self, node: dict[str, Any], factor: int) -> int:
        """A column (ColumnRef): `alias.name` may call name(alias); which columns name `query`."""
        fields = node.get("fields", [])
        if fields and ("A_Star" in fields[-1] or fields[-1].get("String", {}).get("sval") == "query"):
            self.names_query = True
        if len(fields) >= 2 and "String" in fields[-1]:
            refusals.check_row_function(
                fields[-1]["String"]["sval"], self.policy, lambda: ".".join(_names(fields))
            )
        return factor


_NodeRule: TypeAlias = Callable[[_Checker, dict[str, Any], int], int]
#: The rule of each node kind that has one; READ_NODES lists the kinds accepted at all.
_NODE_RULES: dict[str, _NodeRule] = {
    "SelectStmt": _Checker._select,
    "FuncCall": _Checker._call,
    "A_Expr": _Checker._expression,
    "A_Const": _Checker._numeric_constant,
    "TypeCast": _Checker._cast,
    "SubLink": _Checker._sublink,
    "SortBy": _Checker._sort_by,
    "RangeVar": _Checker._relation,
    "RangeTableSample": _Checker._table_sample,
    "ColumnRef": _Checker._column_ref,
    "A_Indirection": _Checker._indirection,
    "RangeTableFunc": _Checker._xml_table,
}


def _names(value: Any) -> list[str]:
    """The strings of a name list (`[{"String": {"sval": "pg_catalog"}}, ...]`)."""
    if not isinstance(value, list):
        return []
    return [
        str(item["String"].get("sval", "")) for item in value if isinstance(item, dict) and "String" in item
    ]


def _constant(value: Any) -> Any:
    """The value of an A_Const (through casts), or None when the expression is not a constant."""
    while isinstance(value, dict) and "TypeCast" in value:
        value = value["TypeCast"].get("arg")
    if not isinstance(value, dict) or "A_Const" not in value:
        return None
    const = value["A_Const"]
    for key, inner in (("ival", "ival"), ("fval", "fval"), ("sval", "sval")):
        if key in const:
            return const[key].get(inner, 0 if key == "ival" else None)
    return None


def _string_constant(value: Any) -> str | None:
    constant = _constant(value)
    return constant if isinstance(constant, str) else None


#: Numeric work PostgreSQL does in one step without checking for interrupts, and folds while planning
#: when its arguments are constants (so EXPLAIN alone runs it): the largest constant exponent (or
#: factorial, or exp() argument) and the most characters of a numeric constant a statement may hold.
MAX_CONSTANT_EXPONENT = 10_000
MAX_NUMERIC_LITERAL_CHARS = 1_000
_NUMERIC_TYPES = frozenset({"numeric", "decimal"})


def _bound_exponent(what: str, value: Any) -> None:
    constant = _constant(value)
    try:
        size = abs(float(constant)) if constant is not None else 0.0
    except (TypeError, ValueError):
        return
    if size > MAX_CONSTANT_EXPONENT:
        raise GuardError(
            Rule.UNINTERRUPTIBLE,
            f"{what} with the constant {str(constant)[:40]} asks PostgreSQL for numeric work it does in one step "
            f"without checking for interrupts (and while planning, since the arguments are constants); the "
            f"limit is {MAX_CONSTANT_EXPONENT:,}.",
            "Use smaller exponents, or float8 arithmetic (cast to double precision).",
        )


def _bound_numeric_literal(text: str) -> None:
    if len(text) > MAX_NUMERIC_LITERAL_CHARS:
        raise GuardError(
            Rule.UNINTERRUPTIBLE,
            f"A numeric constant of {len(text):,} characters: arithmetic on it runs in one step that PostgreSQL "
            f"does not interrupt (and folds while planning); the limit is {MAX_NUMERIC_LITERAL_CHARS:,}.",
            "Use shorter constants.",
        )


def _bound_numeric_cast(node: dict[str, Any]) -> None:
    """'…'::numeric of a long string: the same as a long numeric constant."""
    names = _names(node.get("typeName", {}).get("names"))
    text = _string_constant(node.get("arg")) if names[-1:] and names[-1] in _NUMERIC_TYPES else None
    if text is not None:
        _bound_numeric_literal(text)


def _text_length(value: Any) -> int:
    """Characters of a constant string (at least 1), or ASSUMED_VALUE_CHARS for anything else."""
    constant = _constant(value)
    if isinstance(constant, str):
        return max(len(constant), 1)
    return 1 if isinstance(constant, int | float) else ASSUMED_VALUE_CHARS


def _size_argument(args: list[Any], index: int, name: str) -> int:
    """A size argument that must be a constant integer (an ARRAY[...] of them for array_fill)."""
    if index < len(args):
        value = args[index]
        if isinstance(value, dict) and "A_ArrayExpr" in value:
            product = 1
            for element in value["A_ArrayExpr"].get("elements", []):
                product *= _integer(_constant(element), name)
            return product
        return _integer(_constant(value), name)
    return 1


def _integer(value: Any, name: str) -> int:
    try:
        return abs(int(value))
    except (TypeError, ValueError):
        raise GuardError(
            Rule.AMPLIFIER,
            f"The size argument of {name}() must be a constant integer: its result grows with it, and "
            "pg-mcp bounds it before the query runs.",
            f"Write the size as a number, at most {MAX_AMPLIFIED:,}.",
        ) from None


def _format_widths(fmt: Any) -> list[int]:
    text = _string_constant(fmt)
    if text is None:
        return [1]
    widths = []
    for match in _FORMAT_WIDTH.finditer(text):
        if match.group(1) == "*":
            raise GuardError(
                Rule.AMPLIFIER,
                "format() with a width taken from an argument (%*s) cannot be bounded before it runs.",
                "Write the width as a number in the format string.",
            )
        widths.append(int(match.group(1)))
    return widths or [1]


_STATEMENT_WORDS = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}


def _node_refusal(kind: str) -> GuardError:
    if kind in _STATEMENT_WORDS or kind.endswith("Stmt"):
        return refusals.write_in_query(_STATEMENT_WORDS.get(kind, kind.removesuffix("Stmt").upper()))
    return GuardError(
        Rule.SYNTAX_NOT_ALLOWED,
        f"The query uses syntax PostgreSQL reads as {kind}, which is not part of a plain read.",
        refusals.READ_ONLY_HINT,
    )
