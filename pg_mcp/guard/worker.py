"""A guard worker process: `python -m pg_mcp.guard.worker` checks statements sent on its standard input.

Parsing untrusted text can run away (sqlglot backtracks exponentially on some shapes, and no token
count bounds every such shape), so it never runs in the server's process: the server sends each
statement here and, when the answer is late, kills this process and starts another
(`pg_mcp.guard.pool`). Nothing in the server depends on an exception or a signal landing in code
that happens to be running. The process also caps its own memory, so a parse that balloons fails
here as a refusal instead of growing the server.

The protocol is private to pg-mcp (both ends are this package, framed by `pg_mcp.guard.frames`): a 4-byte big-endian length
and a pickled tuple. The worker writes `("ready",)` once its parsers are loaded; then, for each
`(sql, max_rows, policy or None)` (None: the same policy as the previous job), it writes
`("ok", CheckedQuery)` or `("refused", rule, message, hint)`.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from typing import BinaryIO

#: The most memory (address space) a worker may use: far above any real statement's parse.
MEMORY_LIMIT_BYTES = 2 * 1024**3
#: A long operator chain nests deeply in libpg_query's tree, and reading it back recurses once per
#: level: allowed on the checking thread, whose stack matches (beyond it: refused as too deep).
_RECURSION_LIMIT = 20_000
_STACK_BYTES = 64 * 1024 * 1024


def _serve(source: BinaryIO, sink: BinaryIO) -> None:
    from pg_mcp.errors import GuardError
    from pg_mcp.guard import checking
    from pg_mcp.guard.frames import read_frame, write_frame
    from pg_mcp.guard.policy import GuardPolicy

    checking.load_parsers()
    write_frame(sink, ("ready",))
    policy = GuardPolicy()
    while (job := read_frame(source)) is not None:
        sql, max_rows, sent_policy = job
        policy = sent_policy if sent_policy is not None else policy
        try:
            checked = checking.verdict(sql, max_rows, policy)
        except GuardError as error:
            write_frame(sink, ("refused", str(error.rule), error.message, error.hint))
        else:
            write_frame(sink, ("ok", checked))


def _serve_until_closed(source: BinaryIO, sink: BinaryIO) -> None:
    """Serve until the server closes the pipes (it ended, or it is replacing this worker)."""
    with contextlib.suppress(OSError, EOFError):  # BrokenPipeError included
        _serve(source, sink)


def main() -> None:
    # Signals are the server's to handle (Ctrl-C reaches a whole process group): this process ends when
    # its input closes or the server kills it.
    for number in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(number, signal.SIG_IGN)
    with contextlib.suppress(ValueError, OSError, ImportError):  # not every platform has the limit
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))
    sys.setrecursionlimit(max(sys.getrecursionlimit(), _RECURSION_LIMIT))
    threading.stack_size(_STACK_BYTES)
    source, sink = sys.stdin.buffer, sys.stdout.buffer
    sys.stdout = sys.stderr  # nothing else may write into the protocol
    checker = threading.Thread(target=_serve_until_closed, args=(source, sink), name="pg-mcp-guard-worker")
    checker.start()
    checker.join()
    os._exit(0)  # the server went away (end of input): nothing to clean up


if __name__ == "__main__":
    main()
