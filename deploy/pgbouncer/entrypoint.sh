#!/bin/sh
# Writes PgBouncer's configuration from the environment, then runs it in the foreground.
#   DB_HOST, DB_NAME, DB_USER, DB_PASSWORD   the database behind PgBouncer and the role pg-mcp uses
#   DB_PORT (5432)   DB_SSLMODE (prefer)     how PgBouncer reaches it
#   POOL_SIZE (10)                           server connections for that database and role
# PgBouncer checks the clients' SCRAM passwords against DB_PASSWORD and logs in to PostgreSQL with it.
set -eu
: "${DB_HOST:?set DB_HOST}" "${DB_NAME:?set DB_NAME}" "${DB_USER:?set DB_USER}" "${DB_PASSWORD:?set DB_PASSWORD}"
dir="$(mktemp -d)"
umask 077
quoted() { printf '"%s"' "$(printf '%s' "$1" | sed 's/"/""/g')"; }
printf '%s %s\n' "$(quoted "$DB_USER")" "$(quoted "$DB_PASSWORD")" > "$dir/userlist.txt"
cat > "$dir/pgbouncer.ini" <<INI
[databases]
$DB_NAME = host=$DB_HOST port=${DB_PORT:-5432} dbname=$DB_NAME

[pgbouncer]
listen_addr = 0.0.0.0
listen_port = 6432
unix_socket_dir =
auth_type = scram-sha-256
auth_file = $dir/userlist.txt
pool_mode = transaction
default_pool_size = ${POOL_SIZE:-10}
max_client_conn = 500
server_tls_sslmode = ${DB_SSLMODE:-prefer}
log_connections = 0
log_disconnections = 0
INI
exec pgbouncer "$dir/pgbouncer.ini"
