"""How often the guard refuses legitimate reads from PostgreSQL's own regression suite, and why.

Build the corpus from a directory of regression .sql files (PostgreSQL's src/test/regress/sql/, e.g.
from Debian's postgresql-15_15.18.orig.tar.bz2: `tar xjf ... --wildcards '*/src/test/regress/sql/*'`),
write it (benchmarks/data/ is not committed), then check every statement:

    .venv/bin/python benchmarks/bench_regression_corpus.py /tmp/pgregress
    .venv/bin/python benchmarks/bench_regression_corpus.py --corpus benchmarks/data/regress_reads.sql

What is kept: top-level SELECT / VALUES / TABLE / WITH ... SELECT statements (PostgreSQL's parser reads
a SelectStmt) with no INTO, no row lock and no data-modifying statement anywhere inside, that call no
function, aggregate or range constructor and use no operator that the suite itself creates (when the
suite gives one a built-in's name, like `=` for a test type, only reads in that file are dropped). psql
meta-commands are removed as psql reads them (a backslash outside quotes starts one; \\g, \\gset,
\\gexec ... end the statement), COPY ... FROM stdin data is skipped, and statements touching a line
that uses a psql variable (:var, :'var', :"var" outside quotes) are dropped. Files whose deliberate
lexical errors stop pglast's split are split stretch by stretch, skipping only the broken stretches.

The corpus file holds one statement per line: a backslash is written as two, a newline as \\n and a
carriage return as \\r, which `read_corpus` reverses exactly. A sidecar file (.sources) names the
regression file of each line, for the examples. `--catalog DIR` (PostgreSQL's src/include/catalog
with pg_proc.dat) marks each refused function name as a built-in or not.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import time
from pathlib import Path
from typing import Any

from pglast import parser as pg_parser

from pg_mcp.errors import GuardError
from pg_mcp.guard import GuardPolicy, check_query, postgres_reading, sqlglot_reading
from pg_mcp.guard.functions import ALLOWED_FUNCTIONS, is_function_allowed
from pg_mcp.guard.operators import BUILTIN_OPERATORS
from pg_mcp.guard.tree_walk import nodes

DEFAULT_CORPUS = Path(__file__).parent / "data" / "regress_reads.sql"
POLICY = GuardPolicy(one_arg_functions=frozenset())
_WRITE_NODES = frozenset({"InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt"})
#: psql meta-commands that send the query buffer, i.e. end the statement like `;`.
_SENDING_META = re.compile(r"\\(g|gx|gset|gexec|gdesc|crosstabview|watch)(?![A-Za-z])")
_VARIABLE = re.compile(
    r""":(?:'[A-Za-z_][A-Za-z0-9_]*'|"[A-Za-z_][A-Za-z0-9_]*"|\{\?[A-Za-z_]\w*\}|([A-Za-z_][A-Za-z0-9_]*))"""
)
_DEFINED = re.compile(r"\\(?:set|getenv)\s+([A-Za-z_][A-Za-z0-9_]*)")
_DOLLAR = re.compile(r"\$([A-Za-z_][A-Za-z0-9_]*)?\$")
_COPY_FROM_STDIN = re.compile(r"^\s*copy\b.*\bfrom\s+stdin\b", re.IGNORECASE)
_IDENT_CHAR = re.compile(r"[A-Za-z0-9_$\x80-\uffff]")


# --- reading psql scripts -------------------------------------------------------------------


PLACEHOLDER = "__psql_variable__"
"""What a psql variable reference becomes: statements holding it are left out of the corpus, but the
names they create (CREATE FUNCTION ... AS :'regresslib') still count as the suite's own."""


def psql_to_sql(text: str, defined: frozenset[str] = frozenset()) -> tuple[str, list[int]]:
    """The SQL psql would send for `text`: meta-commands removed (sending ones as `;`), COPY ... FROM
    stdin data skipped, and psql variable references outside quotes replaced by PLACEHOLDER; and the
    character offsets after lines that end a statement (where the text can be cut if need be).

    `:'name'` and `:"name"` are always variables; a bare `:name` is one when `name` is set somewhere
    with \\set or \\getenv, or when it does not follow a digit, a name or a bracket (`a[1:n]` is a slice:
    psql leaves an unset name alone, and \\gset sets names this cannot see)."""
    out: list[str] = []
    cuts: list[int] = []
    offset = 0
    state = "normal"  # normal | squote | equote | dquote | dollar | comment
    tag = ""
    comment_depth = 0
    in_copy_data = False
    for line in text.split("\n"):
        if in_copy_data:
            if line.startswith("\\."):
                in_copy_data = False
            continue
        was_normal = state == "normal"
        kept, state, tag, comment_depth = _scan_line(line, state, tag, comment_depth, defined)
        out.append(kept)
        offset += len(kept) + 1
        if state == "normal" and kept.rstrip().endswith(";"):
            cuts.append(offset)
        if was_normal and _COPY_FROM_STDIN.match(line):
            in_copy_data = True
    return "\n".join(out), cuts


def _scan_line(
    line: str, state: str, tag: str, depth: int, defined: frozenset[str]
) -> tuple[str, str, str, int]:
    """One line through a small lexer that knows where psql sees quotes, comments and backslashes."""
    pieces: list[str] = []
    copied = 0  # line[copied:i] is still to be copied into pieces
    i = 0
    n = len(line)
    while i < n:
        c = line[i]
        if state == "normal":
            if c == "-" and line.startswith("--", i):
                break
            if c == "/" and line.startswith("/*", i):
                state, depth, i = "comment", 1, i + 2
                continue
            if c == "'":
                escaped = i > 0 and line[i - 1] in "eE" and (i < 2 or not _IDENT_CHAR.match(line[i - 2]))
                state = "equote" if escaped else "squote"
            elif c == '"':
                state = "dquote"
            elif c == "$" and not (i > 0 and _IDENT_CHAR.match(line[i - 1])):
                match = _DOLLAR.match(line, i)
                if match:
                    state, tag = "dollar", match.group(0)
                    i = match.end()
                    continue
            elif c == "\\" and line.startswith("\\;", i):  # psql's \; is a `;` that does not send
                pieces.append(line[copied:i] + ";")
                i = copied = i + 2
                continue
            elif c == "\\":
                sending = _SENDING_META.match(line, i)
                pieces.append(line[copied:i] + (";" if sending else ""))
                return "".join(pieces), state, tag, depth
            elif c == ":" and not line.startswith("::", i) and not (i > 0 and line[i - 1] == ":"):
                match = _VARIABLE.match(line, i)
                bare = match.group(1) if match else None
                if (
                    match
                    and bare
                    and bare not in defined
                    and i > 0
                    and (_IDENT_CHAR.match(line[i - 1]) or line[i - 1] in "[]")
                ):
                    match = None
                if match:
                    quote = match.group(0)[1]
                    pieces.append(line[copied:i])
                    pieces.append(f"{quote}{PLACEHOLDER}{quote}" if quote in "'\"" else PLACEHOLDER)
                    i = copied = match.end()
                    continue
        elif state in ("squote", "equote"):
            if state == "equote" and c == "\\":
                i += 2
                continue
            if c == "'":
                if line.startswith("''", i):
                    i += 2
                    continue
                state = "normal"
        elif state == "dquote":
            if c == '"':
                if line.startswith('""', i):
                    i += 2
                    continue
                state = "normal"
        elif state == "dollar":
            if line.startswith(tag, i):
                state, i = "normal", i + len(tag)
                continue
        elif state == "comment":
            if line.startswith("/*", i):
                depth, i = depth + 1, i + 2
                continue
            if line.startswith("*/", i):
                depth, i = depth - 1, i + 2
                if depth == 0:
                    state = "normal"
                continue
        i += 1
    pieces.append(line[copied:])
    return "".join(pieces), state, tag, depth


def defined_variables(files: list[Path]) -> frozenset[str]:
    return frozenset(name for path in files for name in _DEFINED.findall(path.read_text(errors="replace")))


def split_file(path: Path, defined: frozenset[str], stats: collections.Counter[str]) -> list[str]:
    """The statements of one regression file as psql sends them. When pglast cannot split the whole
    file (its scanner stops at a deliberate lexical error), each stretch between statement ends is
    split alone, and only the stretches it cannot split are skipped."""
    sql, cuts = psql_to_sql(path.read_text(encoding="utf-8", errors="replace"), defined)
    try:
        statements = list(pg_parser.split(sql, with_parser=False))
        stats["files split whole"] += 1
        return _join_atomic_bodies(statements)
    except Exception:
        stats["files split stretch by stretch"] += 1
    statements = []
    start = 0
    for end in [*cuts, len(sql)]:
        try:
            statements.extend(pg_parser.split(sql[start:end], with_parser=False))
        except Exception:
            stats["stretches that failed to split (skipped)"] += 1
        start = end
    return _join_atomic_bodies(statements)


_ATOMIC = re.compile(r"\bBEGIN\s+ATOMIC\b", re.IGNORECASE)


def _join_atomic_bodies(pieces: list[str]) -> list[str]:
    """pglast's scanner split cuts `CREATE FUNCTION ... BEGIN ATOMIC a; b; END` at every `;`: glue
    the pieces back up to the one that is just END."""
    statements: list[str] = []
    body: list[str] | None = None
    for piece in pieces:
        if body is not None:
            body.append(piece)
            if piece.strip().upper() == "END" or re.search(r"(?i)(^|\s)END\s*$", piece):
                statements.append("; ".join(body))
                body = None
        elif _ATOMIC.search(piece) and parse_tree(piece) is None and not re.search(r"(?i)\bEND\s*$", piece):
            body = [piece]
        else:
            statements.append(piece)
    if body:
        statements.extend(body)
    return statements


def parse_tree(statement: str) -> dict[str, Any] | None:
    try:
        stmts = json.loads(pg_parser.parse_sql_json(statement)).get("stmts", [])
    except Exception:
        return None
    return stmts[0]["stmt"] if len(stmts) == 1 else None


def _names(value: Any) -> list[str]:
    if not isinstance(value, list):
        return []
    return [
        str(item["String"].get("sval", "")) for item in value if isinstance(item, dict) and "String" in item
    ]


def created_names(tree: dict[str, Any]) -> tuple[set[str], set[str]]:
    """Function-like names and operator names a statement creates (or renames something to)."""
    functions: set[str] = set()
    operators: set[str] = set()
    kind, node = next(iter(tree.items()))
    if kind == "CreateFunctionStmt":  # functions and procedures
        functions.update(_names(node.get("funcname"))[-1:])
    elif kind == "DefineStmt":
        names = _names(node.get("defnames"))[-1:]
        if node.get("kind") == "OBJECT_AGGREGATE":
            functions.update(names)
        elif node.get("kind") == "OBJECT_OPERATOR":
            operators.update(names)
    elif kind == "CreateRangeStmt":  # a range type brings constructor functions of its own name
        name = _names(node.get("typeName"))[-1]
        functions.add(name)
        functions.add(name.replace("range", "multirange") if "range" in name else f"{name}_multirange")
        for param in node.get("params", []):
            elem = param.get("DefElem", {})
            if elem.get("defname") == "multirange_type_name":
                functions.update(_names(elem.get("arg", {}).get("TypeName", {}).get("names"))[-1:])
    elif kind == "RenameStmt" and node.get("renameType") in (
        "OBJECT_FUNCTION",
        "OBJECT_PROCEDURE",
        "OBJECT_AGGREGATE",
    ):
        functions.add(node.get("newname", ""))
    return functions, operators


def used_names(tree: dict[str, Any]) -> tuple[set[str], set[str]]:
    functions: set[str] = set()
    operators: set[str] = set()
    for kind, node in nodes(tree):
        if not isinstance(node, dict):
            continue
        if kind == "FuncCall":
            functions.update(_names(node.get("funcname"))[-1:])
        elif kind == "A_Expr":
            operators.update(_names(node.get("name"))[-1:])
        elif kind == "SubLink":
            operators.update(_names(node.get("operName"))[-1:])
        elif kind == "SortBy":
            operators.update(_names(node.get("useOp"))[-1:])
    return functions, operators


def is_plain_read(tree: dict[str, Any]) -> bool:
    if next(iter(tree)) != "SelectStmt":
        return False
    for kind, node in nodes(tree):
        if kind in _WRITE_NODES:
            return False
        if (
            kind == "SelectStmt"
            and isinstance(node, dict)
            and (node.get("intoClause") or node.get("lockingClause"))
        ):
            return False
    return True


def build_corpus(directory: Path) -> tuple[list[tuple[str, str]], dict[str, Any]]:
    """(file name, statement) pairs of the kept reads, and counts of what was left out."""
    files = sorted(directory.glob("*.sql"))
    parsed: list[tuple[str, str, dict[str, Any]]] = []
    user_functions: set[str] = set()
    user_operators: set[str] = set()
    #: names the suite gives its own functions and operators that are also built-in names (`=` for
    #: a test type, a variadic concat()): only reads in the file that creates them are left out.
    shadowing: dict[str, set[str]] = collections.defaultdict(set)
    stats: collections.Counter[str] = collections.Counter()
    defined = defined_variables(files)
    for path in files:
        for statement in split_file(path, defined, stats):
            stats["statements"] += 1
            tree = parse_tree(statement)
            if tree is None:
                stats["statements that do not parse"] += 1
                continue
            functions, operators = created_names(tree)
            for created in functions & ALLOWED_FUNCTIONS | operators & BUILTIN_OPERATORS:
                shadowing[created].add(path.name)
            user_functions |= functions - ALLOWED_FUNCTIONS
            user_operators |= operators - BUILTIN_OPERATORS
            if PLACEHOLDER in statement:
                stats["statements using a psql variable"] += 1
                continue
            parsed.append((path.name, statement, tree))
    kept: list[tuple[str, str]] = []
    seen: set[str] = set()
    for name, statement, tree in parsed:
        if not is_plain_read(tree):
            stats["not a plain read"] += 1
            continue
        functions, operators = used_names(tree)
        if functions & user_functions or operators & user_operators:
            stats["reads calling a function or operator the suite creates"] += 1
            continue
        if any(name in shadowing[used] for used in functions | operators if used in shadowing):
            stats["reads in the same file as a function or operator it creates with a built-in name"] += 1
            continue
        if statement in seen:
            stats["duplicates"] += 1
            continue
        seen.add(statement)
        kept.append((name, statement))
    report: dict[str, Any] = dict(stats)
    report["user_functions"] = sorted(user_functions)
    report["user_operators"] = sorted(user_operators)
    report["user names that are also built-in (file-local)"] = sorted(
        f"{k}(in {','.join(sorted(v))})" for k, v in shadowing.items()
    )
    return kept, report


# --- the corpus file ------------------------------------------------------------------------


def _escape(statement: str) -> str:
    return statement.replace("\\", "\\\\").replace("\n", "\\n").replace("\r", "\\r")


def _unescape(line: str) -> str:
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r"}.get(m.group(1), m.group(1)), line)


def write_corpus(path: Path, kept: list[tuple[str, str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as out:
        out.writelines(_escape(statement) + "\n" for _, statement in kept)
    with path.with_suffix(".sources").open("w", encoding="utf-8", newline="") as out:
        out.writelines(name + "\n" for name, _ in kept)


def read_corpus(path: Path) -> list[tuple[str, str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    statements = [_unescape(line) for line in lines]
    sources_path = path.with_suffix(".sources")
    sources = sources_path.read_text(encoding="utf-8").split("\n") if sources_path.exists() else []
    if len(sources) < len(statements):
        sources = ["?"] * len(statements)
    return list(zip(sources, statements, strict=False))


# --- checking -------------------------------------------------------------------------------

_FUNCTION = re.compile(r"The function (\S+?)\(\) is (?:not allowed|refused)")
_FIELD = re.compile(r"field selection \(\.\.\.\)\.(\S+?) ")
_OPERATOR = re.compile(r"The operator (\S+) is not")
_NODE = re.compile(r"PostgreSQL reads as (\w+)")
_RELATION = re.compile(r"reads (pg_catalog\.\w+|pg_toast\.\w+)")
_SETTING = re.compile(r"The setting ('[^']*')")


def detail(error: GuardError) -> str:
    """What a refusal is about: the function, operator, node kind, relation or a normalised message."""
    message = error.message
    for pattern, label in (
        (_FUNCTION, "function {}"),
        (_FIELD, "field selection .{}"),
        (_OPERATOR, "operator {}"),
        (_NODE, "node {}"),
        (_RELATION, "relation {}"),
        (_SETTING, "setting {}"),
    ):
        match = pattern.search(message)
        if match:
            return label.format(match.group(1))
    return re.sub(r"\d[\d,]*", "N", message)[:120]


def stage(statement: str) -> str:
    """Which stage refuses: PostgreSQL's reading, sqlglot's, or a later one (wrapping, input)."""
    try:
        tree = postgres_reading.parse(statement)
        postgres_reading.check(tree["stmt"], POLICY)
    except GuardError:
        return "postgres"
    except Exception:
        return "postgres(error)"
    try:
        sqlglot_reading.check(statement, POLICY)
    except GuardError:
        return "sqlglot"
    except Exception:
        return "sqlglot(error)"
    return "other"


def builtin_names(catalog: Path | None) -> frozenset[str] | None:
    if catalog is None or not (catalog / "pg_proc.dat").exists():
        return None
    return frozenset(re.findall(r"proname => '([^']+)'", (catalog / "pg_proc.dat").read_text()))


def run(corpus: list[tuple[str, str]], builtins: frozenset[str] | None, examples: int, top: int) -> None:
    refused: list[tuple[str, str, GuardError, str]] = []
    started = time.perf_counter()
    for source, statement in corpus:
        try:
            check_query(statement, 100, POLICY)
        except GuardError as error:
            refused.append((source, statement, error, stage(statement)))
    elapsed = time.perf_counter() - started
    total = len(corpus)
    print(f"statements: {total}")
    print(f"refused:    {len(refused)} ({100 * len(refused) / max(total, 1):.1f}%)")
    print(f"accepted:   {total - len(refused)}  (checked in {elapsed:.1f} s)")
    print("\nrefusals by rule (stage that refuses):")
    by_rule = collections.Counter(str(error.rule) for _, _, error, _ in refused)
    for rule, count in by_rule.most_common():
        stages = collections.Counter(s for _, _, e, s in refused if str(e.rule) == rule)
        shown = ", ".join(f"{name} {n}" for name, n in stages.most_common())
        print(f"  {rule:24s} {count:6d}  {100 * count / max(total, 1):5.1f}%   [{shown}]")
    by_detail: dict[tuple[str, str], list[tuple[str, str, str]]] = collections.defaultdict(list)
    for source, statement, refusal, where in refused:
        by_detail[(str(refusal.rule), detail(refusal))].append((source, statement, where))
    ranked = sorted(by_detail.items(), key=lambda item: -len(item[1]))
    print(f"\ntop {top} refused names / messages (count, stage, built-in per pg_proc.dat):")
    for (rule, what), items in ranked[:top]:
        places = ",".join(sorted({where for _, _, where in items}))
        mark = ""
        if builtins is not None and what.startswith(("function ", "field selection .")):
            name = what.split()[-1].lstrip(".").split(".")[-1]
            mark = " built-in" if name in builtins else " NOT in pg_proc"
        print(f"  {len(items):5d}  {rule:22s} {what}  [{places}]{mark}")
    print(f"\nall refused function names ({sum(1 for (r, w) in by_detail if w.startswith('function '))}):")
    print("  " + " ".join(f"{w.split()[-1]}:{len(v)}" for (r, w), v in ranked if w.startswith("function ")))
    print("\nfunctions off the allowlist in every call of the corpus, not only the first refusal")
    print("(statements calling it; * = a statement where it is the only such call):")
    print(
        "  "
        + " ".join(
            f"{name}:{n}{'*' if alone[name] else ''}"
            for name, n in sorted(off_list_calls(corpus).items(), key=lambda kv: (-kv[1], kv[0]))
        )
    )
    print(f"\nexamples ({examples} per category, top {top}):")
    for (rule, what), items in ranked[:top]:
        print(f"-- {rule}: {what} ({len(items)})")
        for source, statement, _ in items[:examples]:
            flat = " ".join(statement.split())
            print(f"     [{source}] {flat[:300]}")


def off_list_calls(corpus: list[tuple[str, str]]) -> collections.Counter[str]:
    """How many statements call each function (unqualified or pg_catalog) that is not on the allowlist."""
    counts: collections.Counter[str] = collections.Counter()
    alone.clear()
    for _, statement in corpus:
        tree = parse_tree(statement)
        names: set[str] = set()
        for kind, node in nodes(tree or {}):
            if kind == "FuncCall" and isinstance(node, dict):
                parts = _names(node.get("funcname"))
                builtin = len(parts) == 1 or (len(parts) == 2 and parts[0] == "pg_catalog")
                if builtin and not is_function_allowed(parts[-1], None, POLICY.allowed_functions)[0]:
                    names.add(parts[-1])
        counts.update(names)
        if len(names) == 1:
            alone[next(iter(names))] += 1
    return counts


alone: collections.Counter[str] = collections.Counter()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "directory", nargs="?", type=Path, help="regression sql/ directory to build the corpus from"
    )
    parser.add_argument("--corpus", type=Path, help="run from this corpus file alone")
    parser.add_argument("--write", type=Path, default=DEFAULT_CORPUS, help="where to write the built corpus")
    parser.add_argument(
        "--catalog", type=Path, help="PostgreSQL's src/include/catalog, to mark built-in names"
    )
    parser.add_argument("--examples", type=int, default=3)
    parser.add_argument("--top", type=int, default=40)
    args = parser.parse_args()
    if args.corpus:
        corpus = read_corpus(args.corpus)
    elif args.directory:
        corpus, stats = build_corpus(args.directory)
        write_corpus(args.write, corpus)
        for key, value in stats.items():
            if isinstance(value, list):
                print(f"{key} ({len(value)}): {' '.join(value)}")
            else:
                print(f"{key}: {value}")
        print(f"kept {len(corpus)} statements -> {args.write} ({args.write.stat().st_size:,} bytes)\n")
    else:
        parser.error("give a regression sql/ directory or --corpus FILE")
    run(corpus, builtin_names(args.catalog), args.examples, args.top)


if __name__ == "__main__":
    main()
