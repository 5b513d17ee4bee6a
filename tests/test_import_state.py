"""Importing pg-mcp changes nothing process-wide: recursion limits, thread stack sizes, signal handlers
and the like are set by the entry points that need them (`pg_mcp.cli.main`, `pg_mcp.guard.worker.main`),
never by an import, so a program or test that imports a module keeps its own."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

_SCRIPT = """
import atexit, gc, json, pkgutil, importlib, signal, sys, threading
import logging

registered = []  # exit handlers registered from here on: the standard library registers its own
_register = atexit.register
atexit.register = lambda function, *args, **kwargs: registered.append(
    getattr(function, "__module__", "?")
) or _register(function, *args, **kwargs)


def state():
    return {
        "recursion limit": sys.getrecursionlimit(),
        "thread stack size": threading.stack_size(),
        "signal handlers": {
            sig.name: repr(signal.getsignal(sig)) for sig in signal.valid_signals() if isinstance(sig, signal.Signals)
        },
        "collector": [gc.isenabled(), gc.get_threshold(), gc.get_freeze_count()],
        "pg-mcp's exit handlers": [name for name in registered if name.startswith("pg_mcp")],
        "threads": threading.active_count(),
        "switch interval": sys.getswitchinterval(),
        "streams": [id(sys.stdin), id(sys.stdout), id(sys.stderr)],
        "hooks": [repr(sys.excepthook), repr(threading.excepthook), repr(sys.gettrace()), repr(sys.getprofile())],
        "root logger": [logging.getLogger().level, len(logging.getLogger().handlers)],
    }


before = state()
import pg_mcp

names = sorted(
    info.name for info in pkgutil.walk_packages(pg_mcp.__path__, "pg_mcp.") if not info.name.endswith("__main__")
)
for name in names:
    importlib.import_module(name)
print(json.dumps({"modules": names, "before": before, "after": state()}))
"""


def test_importing_every_module_leaves_the_process_as_it_was() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _SCRIPT], capture_output=True, text=True, timeout=120, cwd=ROOT, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    assert "pg_mcp.guard.worker" in report["modules"] and "pg_mcp.cli" in report["modules"]
    changed = {
        key: (value, report["after"][key])
        for key, value in report["before"].items()
        if report["after"][key] != value
    }
    assert not changed
