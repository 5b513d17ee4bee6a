"""What `pg-mcp check` and the start-up log report: the server, the role, and the role's risks."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from pg_mcp.config import Settings
from pg_mcp.database.catalog import Catalog
from pg_mcp.database.executor import Database
from pg_mcp.database.lineage import expand_policy
from pg_mcp.database.reach import read_reach
from pg_mcp.database.records import RoleFacts
from pg_mcp.errors import PgMcpError
from pg_mcp.guard.access import AccessPolicy
from pg_mcp.guard.secrets import SECRET_FUNCTION_COLUMNS, SECRET_GROUPS
from pg_mcp.names import quote_ident

log = logging.getLogger(__name__)

#: The system views through which a secret column of a function is usually read.
SECRET_VIEWS = {"pg_stat_get_activity": "pg_stat_activity"}

ROLE_SQL = """
WITH writable AS (  -- tables the role could change, outside the system schemas
    SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
      AND n.nspname NOT LIKE 'pg\\_%'
      AND (has_table_privilege(c.oid, 'INSERT') OR has_table_privilege(c.oid, 'UPDATE')
           OR has_table_privilege(c.oid, 'DELETE') OR has_table_privilege(c.oid, 'TRUNCATE'))
)
SELECT current_setting('server_version') AS server_version, current_database() AS database,
       current_user AS role, r.rolsuper AS superuser, r.rolcreaterole AS createrole, r.rolcreatedb AS createdb,
       r.rolreplication AS replication, r.rolbypassrls AS bypassrls,
       pg_is_in_recovery() AS standby,
       has_database_privilege(current_database(), 'CREATE') AS can_create_schema,
       has_database_privilege(current_database(), 'TEMP') AS can_create_temp,
       ARRAY(SELECT c FROM pg_db_role_setting s, unnest(s.setconfig) AS c
             WHERE s.setrole = r.oid
               AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database()))
             ORDER BY 1) AS role_settings,
       (SELECT count(*) FROM writable) AS writable_tables,
       ARRAY(SELECT DISTINCT quote_ident(nspname) FROM writable ORDER BY 1) AS writable_schemas,
       ARRAY(SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE has_schema_privilege(n.oid, 'CREATE')
          AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1) AS creatable_schemas,
       ARRAY(SELECT quote_ident(n.nspname) FROM pg_namespace n WHERE has_schema_privilege('public', n.oid, 'CREATE')
          AND n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1) AS public_creatable_schemas,
       ARRAY(SELECT b.rolname::text FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
             WHERE m.member = r.oid ORDER BY 1) AS member_of,
       ARRAY(SELECT p.name FROM unnest(ARRAY['pg_read_server_files', 'pg_write_server_files',
                 'pg_execute_server_program', 'pg_signal_backend']) AS p(name)
             WHERE EXISTS (SELECT 1 FROM pg_roles x WHERE x.rolname = p.name)
               AND pg_has_role(current_user, p.name, 'MEMBER')) AS dangerous_roles,
       ARRAY(SELECT ARRAY[e.extname::text, quote_ident(x.nspname)] FROM pg_extension e
             JOIN pg_namespace x ON x.oid = e.extnamespace
             WHERE e.extname IN ('dblink', 'postgres_fdw', 'adminpack', 'file_fdw') ORDER BY 1) AS risky_extensions
FROM pg_roles r WHERE r.rolname = current_user
"""


#: Which of the secrets pg-mcp refuses by default this role could read without it.
SECRETS_SQL = """
SELECT ARRAY(SELECT name FROM unnest($1::text[]) AS name
             WHERE to_regclass('pg_catalog.' || name) IS NOT NULL
               AND has_table_privilege('pg_catalog.' || name, 'SELECT')) AS relations,
       ARRAY(SELECT DISTINCT p.proname::text FROM pg_proc p
             WHERE p.proname = ANY($2::text[]) AND p.pronamespace = 'pg_catalog'::regnamespace
               AND has_function_privilege(p.oid, 'EXECUTE')) AS functions,
       (SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) AS c
        WHERE split_part(c, '=', 1) LIKE '%.%'
          AND s.setdatabase IN (0, (SELECT oid FROM pg_database WHERE datname = current_database())))
           AS custom_settings
"""


#: What PostgreSQL's own privileges enforce without pg-mcp, for what the reach model refuses: which of
#: the operator-written functions pg-mcp does not allow ($1) the role may execute, and which hidden
#: columns ($2, $3: relation OIDs and column numbers) it may read.
PRIVILEGES_SQL = """
WITH executable AS (
    SELECT p.oid::regprocedure::text AS signature, p.pronamespace::regnamespace::text AS schema
    FROM unnest($1::oid[]) AS f(oid) JOIN pg_proc p ON p.oid = f.oid
    WHERE has_function_privilege(p.oid, 'EXECUTE')
), hidden AS (
    SELECT c.oid, n.nspname, c.relname, a.attname
    FROM unnest($2::oid[], $3::int2[]) AS h(relid, attnum)
    JOIN pg_class c ON c.oid = h.relid JOIN pg_namespace n ON n.oid = c.relnamespace
    JOIN pg_attribute a ON a.attrelid = h.relid AND a.attnum = h.attnum
    WHERE has_column_privilege(h.relid, h.attnum, 'SELECT')
)
SELECT ARRAY(SELECT signature FROM executable ORDER BY 1) AS executable,
       ARRAY(SELECT DISTINCT schema FROM executable ORDER BY 1) AS executable_schemas,
       ARRAY(SELECT format('%I.%I.%I', nspname, relname, attname) FROM hidden ORDER BY 1) AS readable_hidden,
       ARRAY(SELECT format('REVOKE SELECT ON %I.%I FROM %I; GRANT SELECT (%s) ON %I.%I TO %I;',
                           h.nspname, h.relname, current_user,
                           (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
                            WHERE a.attrelid = h.oid AND a.attnum > 0 AND NOT a.attisdropped
                              AND a.attname NOT IN (SELECT x.attname FROM hidden x WHERE x.oid = h.oid)),
                           h.nspname, h.relname, current_user)
             FROM (SELECT DISTINCT oid, nspname, relname FROM hidden) h ORDER BY 1) AS hidden_fixes
"""

#: Functions named one by one in the report; the count says how many more there are.
FUNCTIONS_SHOWN = 20


@dataclass
class RoleReport:
    """Facts about the connection and a list of risks, each with its fix."""

    facts: RoleFacts
    visible_tables: int
    risks: list[str] = field(default_factory=list)
    readable_secrets: dict[str, list[str]] = field(default_factory=dict)
    """Secret group -> what of it the role can read (pg-mcp still refuses it unless allowed)."""
    denied: dict[str, str] = field(default_factory=dict)
    """Relations the operator limits put out of reach although no setting names them, and why."""


async def readable_secrets(db: Database) -> dict[str, list[str]]:
    """The secrets of each group the connected role could read on its own."""
    relations = sorted({name for group in SECRET_GROUPS.values() for name in group.relations})
    functions = sorted({name for group in SECRET_GROUPS.values() for name in group.functions})
    functions += sorted(SECRET_FUNCTION_COLUMNS)
    row = (await db.fetch_fixed(SECRETS_SQL, relations, functions))[0]
    found: dict[str, list[str]] = {}
    for name, group in SECRET_GROUPS.items():
        items = [r for r in row["relations"] if r in group.relations]
        items += [f"{f}()" for f in row["functions"] if f in group.functions]
        for function in row["functions"]:
            column, owner = SECRET_FUNCTION_COLUMNS.get(function, ("", ""))
            if owner == name:
                items.append(f"{SECRET_VIEWS.get(function, function + '()')}.{column}")
        if name == "custom_settings" and row["custom_settings"]:
            items.append(f"{row['custom_settings']} custom settings readable with current_setting()")
        if items:
            found[name] = items
    return found


async def visible_tables(catalog: Catalog) -> int:
    """How many relations `list_tables` would list in all, from the per-schema counts: one row per
    schema, never one per table (a catalog of 100,000 tables is counted in the database)."""
    return sum(schema.tables for schema in await catalog.list_schemas())


async def role_report(db: Database, catalog: Catalog) -> RoleReport:
    facts = RoleFacts(**dict((await db.fetch_fixed(ROLE_SQL))[0]))
    report = RoleReport(facts, await visible_tables(catalog))
    report.readable_secrets = await readable_secrets(db)
    expanded = await expand_policy(db, catalog.access)  # the configured policy when no limit is set
    report.denied = {
        f"{schema}.{table}": reason for (schema, table), reason in sorted(expanded.denied.items())
    }
    role = quote_ident(facts.role)
    report.risks.extend(await privilege_risks(db, expanded, role, superuser=bool(facts.superuser)))
    fix = "`pg-mcp role-sql > role.sql` prints a script that creates a least-privilege role"
    if facts.superuser:
        report.risks.append(
            f"Role {role} is a SUPERUSER: it could read server files and bypass every grant. Connect as a "
            f"dedicated read-only role instead ({fix})."
        )
    flags = ("createrole", "createdb", "bypassrls", "replication")
    for flag in flags:
        if getattr(facts, flag) and not facts.superuser:
            report.risks.append(f"Role {role} has {flag.upper()}: ALTER ROLE {role} NO{flag.upper()};")
    database = quote_ident(facts.database)
    if facts.can_create_schema and not facts.superuser:
        report.risks.append(
            f"Role {role} can create schemas: REVOKE CREATE ON DATABASE {database} FROM {role}; "
            "(and FROM PUBLIC if the grant is to every role)"
        )
    if facts.writable_tables and not facts.superuser:
        schemas = ", ".join(facts.writable_schemas)
        report.risks.append(
            f"Role {role} can write to {facts.writable_tables} tables: "
            f"REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA {schemas} FROM {role};"
        )
    if facts.creatable_schemas and not facts.superuser:
        schemas = ", ".join(facts.creatable_schemas)
        fix = f"REVOKE CREATE ON SCHEMA {schemas} FROM {role};"
        if facts.public_creatable_schemas:  # a grant to every role: revoking it from one changes nothing
            fix += (
                f" REVOKE CREATE ON SCHEMA {', '.join(facts.public_creatable_schemas)} FROM PUBLIC; (granted to "
                "every role, as schema public was before PostgreSQL 15: grant CREATE back to the roles that need it)"
            )
        report.risks.append(f"Role {role} can create objects in schemas {schemas}: {fix}")
    if facts.can_create_temp and not facts.superuser:
        report.risks.append(
            f"Role {role} can create temporary tables: REVOKE TEMPORARY ON DATABASE {database} FROM {role}; "
            f"REVOKE TEMPORARY ON DATABASE {database} FROM PUBLIC; (the default grant is to every role; grant "
            f"it back to the roles that need it, or run the script from `pg-mcp role-sql` with -v strict=on)"
        )
    for member in facts.dangerous_roles:
        if not facts.superuser:
            report.risks.append(f"Role {role} is a member of {member}: REVOKE {member} FROM {role};")
    for member in facts.member_of:
        if member not in facts.dangerous_roles:
            report.risks.append(
                f"Role {role} is a member of {member} and may use its privileges: REVOKE {member} FROM {role};"
            )
    for extension, schema in facts.risky_extensions:
        report.risks.append(
            f"Extension {extension} (schema {schema}) is installed: it can reach outside the database. Unless "
            f"{role} needs it: DROP EXTENSION {extension}; or revoke EXECUTE on its functions from PUBLIC "
            f"and {role}."
        )
    return report


async def privilege_risks(db: Database, access: AccessPolicy, role: str, *, superuser: bool) -> list[str]:
    """Where PostgreSQL's own privileges do not back up what pg-mcp refuses (the reach model, under the
    limits `access`): each with the statements that close it (a superuser bypasses privileges: its
    report says so once, elsewhere)."""
    reach = await read_reach(db, db.settings.allow_functions, access)
    hidden = [(relid, attnum) for relid, columns in reach.hidden.items() for attnum in columns]
    row = (
        await db.fetch_fixed(
            PRIVILEGES_SQL, list(reach.functions), [r for r, _ in hidden], [a for _, a in hidden]
        )
    )[0]
    risks: list[str] = []
    if db.analysis_logged:
        risks.append(
            "PostgreSQL writes pg-mcp's analysis of every statement (its parse tree) to the server's log, because "
            f"role {role} may not set log_min_messages for its own transactions. As a superuser (PostgreSQL 15 "
            f"or newer): GRANT SET ON PARAMETER log_min_messages TO {role};"
        )
    if superuser:
        return risks
    count = len(row["executable"])
    if count:
        shown = ", ".join(row["executable"][:FUNCTIONS_SHOWN]) + (
            f" and {count - FUNCTIONS_SHOWN} more" if count > FUNCTIONS_SHOWN else ""
        )
        schemas = ", ".join(row["executable_schemas"])
        risks.append(
            f"Role {role} may execute {count} functions written in this database that PG_MCP_ALLOW_FUNCTIONS does not "
            f"allow ({shown}). pg-mcp refuses every statement that can reach them; for PostgreSQL to refuse them too: "
            f"REVOKE EXECUTE ON ALL FUNCTIONS IN SCHEMA {schemas} FROM PUBLIC, {role}; ALTER DEFAULT PRIVILEGES "
            f"REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC; (then GRANT EXECUTE back to the roles and functions that need it)"
        )
    if row["readable_hidden"]:
        risks.append(
            f"Role {role} may read the hidden columns {', '.join(row['readable_hidden'])} itself (pg-mcp refuses "
            f"them). For PostgreSQL to refuse them too: {' '.join(row['hidden_fixes'])}"
        )
    return risks


def format_report(report: RoleReport, settings: Settings) -> str:
    f = report.facts
    lines = [
        f"PostgreSQL {f.server_version}{' (standby)' if f.standby else ''}, database {f.database}",
        f"Role: {f.role}{' (SUPERUSER)' if f.superuser else ''}",
        f"Role defaults: {', '.join(f.role_settings) or 'none'}",
        "Every statement pg-mcp runs: a READ ONLY transaction that is always rolled back, "
        f"statement_timeout {settings.statement_timeout:g} s, lock_timeout {settings.lock_timeout:g} s, "
        f"idle_in_transaction_session_timeout {settings.idle_in_transaction_timeout:g} s, at most "
        f"{settings.max_rows_limit} rows and {settings.max_result_bytes:,} bytes per result; "
        "anything but a read is refused before it reaches the database.",
        f"Visible tables and views: {report.visible_tables}",
    ]
    if report.denied:
        lines.append("Out of reach through the operator limits (derived from limited data):")
        lines.extend(f"  - {name}: {reason}" for name, reason in report.denied.items())
    if report.readable_secrets:
        allowed = set(settings.allow_secrets)
        lines.append(
            "Secrets the role can read (pg-mcp refuses them unless PG_MCP_ALLOW_SECRETS names the group):"
        )
        for group, items in report.readable_secrets.items():
            state = "ALLOWED" if group in allowed else "refused"
            lines.append(f"  - {group} ({state}): {', '.join(items)}")
    if report.risks:
        lines.append("Risks (the server still refuses writes, but fix these for defence in depth):")
        lines.extend(f"  - {risk}" for risk in report.risks)
    else:
        lines.append("Role privileges: least privilege, no risks found.")
    return "\n".join(lines)


async def log_role_risks(db: Database, catalog: Catalog) -> None:
    """At start-up: one warning per risk of the connected role, so an over-privileged setup is noticed."""
    try:
        report = await role_report(db, catalog)
    except PgMcpError as exc:
        log.warning("could not check the role's privileges: %s", exc.message)
        return
    for risk in report.risks:
        log.warning("%s", risk)
