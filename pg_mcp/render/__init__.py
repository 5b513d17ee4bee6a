"""Values, results and catalog answers as compact text and JSON-safe structured content (pure, no I/O)."""
