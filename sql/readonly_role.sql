-- A least-privilege login role for pg-mcp: it can read the schemas you choose and nothing else.
--
-- Run it as a database owner or superuser, with psql, once per database:
--
--   psql "postgresql://admin@db.example.com/shop" \
--        -v role_name=mcp_reader -v password='a long random secret' \
--        -v dbname=shop -v schemas='sales, inventory' \
--        -f sql/readonly_role.sql
--
-- Then give pg-mcp   DATABASE_URL=postgresql://mcp_reader:<password>@db.example.com/shop
-- and run           pg-mcp check   to confirm it reports no risks.
--
-- Variables (all required): role_name, password, dbname, schemas (comma-separated list).
-- Optional: -v strict=on also revokes from PUBLIC (every role) the database's TEMP privilege and
-- EXECUTE on functions that act outside the current query (sections 3 and 6). Roles that rely on
-- those default grants must then be granted them explicitly.
-- Optional: -v temp_file_limit=512MB caps the temporary files one session may write (sorts and
-- hashes that spill to disk); the default is 1GB, -1 means no cap. It can only be set by a
-- superuser, so it is skipped, with a notice, when the script runs as a database owner.
-- Role names must not start with "pg_" (PostgreSQL reserves that prefix).

\set ON_ERROR_STOP on

-- 1. The role: it can log in and do nothing else.
--    NOSUPERUSER/NOCREATEDB/NOCREATEROLE/NOREPLICATION/NOBYPASSRLS: no administrative powers.
--    NOINHERIT: even if someone later grants it membership in another role, it does not silently
--    gain that role's privileges.
--    CONNECTION LIMIT: pg-mcp's pool needs PG_MCP_POOL_MAX connections (5 by default) per replica.
CREATE ROLE :"role_name" WITH LOGIN PASSWORD :'password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT
    CONNECTION LIMIT 10;

-- 2. Session defaults enforced by the server itself, whatever client connects with this role.
--    pg-mcp sets its own (stricter) limits per statement; these are the backstop.
ALTER ROLE :"role_name" SET default_transaction_read_only = on;
ALTER ROLE :"role_name" SET statement_timeout = '30s';
ALTER ROLE :"role_name" SET lock_timeout = '5s';
ALTER ROLE :"role_name" SET idle_in_transaction_session_timeout = '60s';
--    temp_file_limit is superuser-only (PostgreSQL 15 can GRANT SET ON PARAMETER it): pg-mcp cannot
--    set it per call for this role, so the role default set here is the cap that applies.
\if :{?temp_file_limit}
\else
\set temp_file_limit 1GB
\endif
SELECT rolsuper AS running_as_superuser FROM pg_roles WHERE rolname = current_user \gset
\if :running_as_superuser
ALTER ROLE :"role_name" SET temp_file_limit = :'temp_file_limit';
\else
\echo 'Not run as a superuser: temp_file_limit not set for the role; a superuser can run'
\echo '  ALTER ROLE' :"role_name" 'SET temp_file_limit =' :'temp_file_limit' ';'
\endif

--    pg-mcp has PostgreSQL analyse each statement before it is planned and send the tree back
--    (debug_print_rewritten); letting the role set log_min_messages for its own transactions keeps
--    those trees out of the server's log. Superuser-only, PostgreSQL 15 or newer.
SELECT current_setting('server_version_num')::int >= 150000 AS can_grant_parameters \gset
\if :running_as_superuser
\if :can_grant_parameters
GRANT SET ON PARAMETER log_min_messages TO :"role_name";
\endif
\else
\echo 'Not run as a superuser: a superuser can run'
\echo '  GRANT SET ON PARAMETER log_min_messages TO' :"role_name" ';'
\echo '  so that the server does not log pg-mcp''s analysis of every statement.'
\endif

-- 3. The database: connect, but no CREATE (no new schemas) and no TEMP (no temporary tables).
--    Note: PUBLIC (every role) gets CONNECT and TEMP on a new database by default, and grants to
--    PUBLIC cannot be revoked from one role alone. To really take TEMP away it is revoked from
--    PUBLIC with -v strict=on; grant it back to the roles that need it.
REVOKE CREATE, TEMPORARY ON DATABASE :"dbname" FROM :"role_name";
GRANT CONNECT ON DATABASE :"dbname" TO :"role_name";
\if :{?strict}
REVOKE TEMPORARY ON DATABASE :"dbname" FROM PUBLIC;
\endif

-- 4. The schemas to expose: USAGE on the schema, SELECT on every table and view in it.
--    Before PostgreSQL 15 every role could CREATE in schema public (a grant to PUBLIC, which a
--    database created then keeps after an upgrade); make sure this role cannot, and with
--    -v strict=on take it from PUBLIC too (grant it back to the roles that create objects there):
SELECT format('REVOKE CREATE ON SCHEMA %I FROM %I', nspname, :'role_name')
FROM pg_namespace WHERE nspname = 'public' \gexec
\if :{?strict}
SELECT format('REVOKE CREATE ON SCHEMA %I FROM PUBLIC', nspname)
FROM pg_namespace WHERE nspname = 'public' AND has_schema_privilege('public', oid, 'CREATE') \gexec
\endif

SELECT format('GRANT USAGE ON SCHEMA %I TO %I', trim(s), :'role_name'),
       format('GRANT SELECT ON ALL TABLES IN SCHEMA %I TO %I', trim(s), :'role_name')
FROM unnest(string_to_array(:'schemas', ',')) AS s \gexec

-- 5. Tables created later: default privileges apply to objects created by the role that runs this
--    script (usually the owner of the schemas). If another role creates tables, run the same
--    statement with FOR ROLE <that_role>.
SELECT format('ALTER DEFAULT PRIVILEGES IN SCHEMA %I GRANT SELECT ON TABLES TO %I', trim(s), :'role_name')
FROM unnest(string_to_array(:'schemas', ',')) AS s \gexec

-- 6. Functions that act outside the current query are executable by PUBLIC by default.
--    pg-mcp's guard refuses them anyway; revoking EXECUTE removes them for defence in depth.
--    Revoking from PUBLIC affects every role that relies on the default grant, so it happens only
--    with -v strict=on. (Server-side lo_import/lo_export, pg_read_file, pg_ls_dir and COPY to or
--    from a file or program are already limited to superusers or the pg_read_server_files,
--    pg_write_server_files and pg_execute_server_program roles -- never grant those to this role.)
\if :{?strict}
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC', p.oid::regprocedure)
FROM pg_proc p
WHERE p.pronamespace = 'pg_catalog'::regnamespace
  AND (p.proname IN ('pg_sleep', 'pg_sleep_for', 'pg_sleep_until', 'pg_notify',
                     'pg_cancel_backend', 'pg_terminate_backend',
                     'lo_create', 'lo_creat', 'lo_unlink', 'lo_put', 'lo_from_bytea', 'lo_truncate',
                     'lo_truncate64', 'lowrite')
       OR (p.proname LIKE 'pg\_%advisory%lock%' AND p.proname <> 'pg_advisory_unlock_all'))
ORDER BY 1 \gexec
\endif

-- 6b. Functions written in this database are executable by PUBLIC by default. pg-mcp refuses every
--    statement that can reach one the operator has not allowed (PG_MCP_ALLOW_FUNCTIONS), operators,
--    casts and domains included; PostgreSQL's own EXECUTE check refuses them too, even while planning,
--    once they are revoked. With -v strict=on, EXECUTE on every such function outside extensions is
--    revoked from PUBLIC and from the role (grant it back to the roles that need it).
\if :{?strict}
SELECT format('REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %I', p.oid::regprocedure, :'role_name')
FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_%'
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid
                  AND d.deptype = 'e')
ORDER BY 1 \gexec
--    (For functions created later: ALTER DEFAULT PRIVILEGES [FOR ROLE <creator>] REVOKE EXECUTE ON
--    FUNCTIONS FROM PUBLIC; run by the roles that create them.)
\endif

-- 6c. Hidden columns (optional -v hidden_columns='schema.table.column, ...', the same list as
--    PG_MCP_HIDDEN_COLUMNS): SELECT on each such table is replaced by SELECT on its other columns, so
--    that PostgreSQL refuses the hidden ones whatever reaches the database.
\if :{?hidden_columns}
SELECT format('REVOKE SELECT ON %I.%I FROM %I', n.nspname, c.relname, :'role_name'),
       format('GRANT SELECT (%s) ON %I.%I TO %I',
              (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum) FROM pg_attribute a
               WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                 AND format('%s.%s.%s', n.nspname, c.relname, a.attname) <> ALL (h.columns)),
              n.nspname, c.relname, :'role_name')
FROM (SELECT array_agg(trim(x)) AS columns FROM unnest(string_to_array(:'hidden_columns', ',')) AS x) h
CROSS JOIN pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE EXISTS (SELECT FROM unnest(h.columns) AS x WHERE x LIKE format('%s.%s.%%', n.nspname, c.relname))
ORDER BY 1 \gexec
\endif

-- 7. Check the result: expect superuser = f, no memberships, read-only default, and SELECT only.
SELECT r.rolname, r.rolsuper AS superuser, r.rolinherit AS inherits,
       ARRAY(SELECT b.rolname FROM pg_auth_members m JOIN pg_roles b ON b.oid = m.roleid
             WHERE m.member = r.oid) AS member_of,
       (SELECT array_agg(c) FROM pg_db_role_setting s, unnest(s.setconfig) AS c WHERE s.setrole = r.oid)
           AS settings
FROM pg_roles r WHERE r.rolname = :'role_name';

SELECT table_schema, count(*) FILTER (WHERE privilege_type = 'SELECT') AS select_grants,
       count(*) FILTER (WHERE privilege_type <> 'SELECT') AS other_grants
FROM information_schema.role_table_grants
WHERE grantee = :'role_name'
GROUP BY table_schema ORDER BY table_schema;
