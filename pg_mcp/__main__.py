"""`python -m pg_mcp` behaves like the `pg-mcp` command."""

from pg_mcp.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
