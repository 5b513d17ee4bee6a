"""Static bearer tokens for small teams: only each token's SHA-256 is stored, compared in constant time.

The tokens file is JSON: `{"tokens": [{"name": ..., "sha256": ..., "databases": [...] | null,
"created": ..., "tools": [...]}]}` (`tools` only for a token limited to some tools), written with mode 0600 and re-read whenever it changes on disk, so `pg-mcp token
add` and `token revoke` take effect on a running server without a restart.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import re
import secrets
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pg_mcp.config import DATABASE_NAME, TOOL_NAME
from pg_mcp.errors import ConfigError
from pg_mcp.server.principal import Principal

log = logging.getLogger(__name__)

TOKEN_PREFIX = "pgmcp_"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


@dataclass(frozen=True)
class StoredToken:
    name: str
    sha256: str
    databases: tuple[str, ...] | None
    created: str
    #: The tools the token may call; None: every tool the server offers.
    tools: tuple[str, ...] | None = None


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8", "surrogatepass")).hexdigest()


def token_databases(given: str | None) -> tuple[str, ...] | None:
    """`--databases` as given to `pg-mcp token add`: None (all) only when it is not given at all; an
    empty list or a name that no database can have is an error, never "all"."""
    return _names(
        given,
        "--databases",
        "database",
        DATABASE_NAME,
        "use every database",
        "Database names are lower-case letters, digits and _, starting with a letter, as in the config file.",
    )


def token_tools(given: str | None) -> tuple[str, ...] | None:
    """`--tools` as given to `pg-mcp token add`: None (all) only when it is not given at all. The names
    are checked as names only: the server's own tools (`[tools.NAME]` of its config file) are not known
    here, so a name that is not one of pg-mcp's tools is named on stderr by the command."""
    return _names(
        given,
        "--tools",
        "tool",
        TOOL_NAME,
        "call every tool",
        "Tool names are letters, digits and _, starting with a letter: query,list_tables,describe_table.",
    )


def _names(
    given: str | None, flag: str, noun: str, pattern: re.Pattern[str], everything: str, form: str
) -> tuple[str, ...] | None:
    """A comma-separated list of names given with `flag`, each once, in order; None when not given."""
    if given is None:
        return None
    names = tuple(dict.fromkeys(name.strip() for name in given.split(",")))
    if not any(names):
        raise ConfigError(f"{flag} names no {noun}.", f"Omit {flag} for a token that may {everything}.")
    wrong = [name for name in names if not pattern.fullmatch(name)]
    if wrong:
        raise ConfigError(f"{flag} has {', '.join(repr(w[:64]) for w in wrong)}, not a {noun} name.", form)
    return names


class TokenStore:
    """The tokens file, read again whenever it changes (its inode, size, modification or change time:
    a replacement cannot keep the old tokens by restoring the modification time). A file that stops
    parsing leaves the last good tokens in force for GRACE_SECONDS (a rewrite in progress), logged, and
    admits nobody after that."""

    GRACE_SECONDS = 30.0

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._seen: tuple[int, ...] | None = None
        self._tokens: tuple[StoredToken, ...] = ()
        self._broken_since: float | None = None

    def tokens(self) -> tuple[StoredToken, ...]:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._seen, self._tokens = None, ()
            return self._tokens
        seen = (stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)
        if seen != self._seen:
            try:
                self._tokens = _parse(self.path)
            except ConfigError:
                now = time.monotonic()
                if self._seen is None or (
                    self._broken_since is not None and now - self._broken_since > self.GRACE_SECONDS
                ):
                    raise
                if self._broken_since is None:
                    self._broken_since = now
                    log.error(
                        "the tokens file %s does not parse; the last good tokens stay for %g s",
                        self.path,
                        self.GRACE_SECONDS,
                    )
                return self._tokens
            self._seen, self._broken_since = seen, None
        return self._tokens

    def verify(self, presented: str) -> Principal | None:
        """The token's principal, or None. Every stored hash is compared, in constant time each."""
        digest = _digest(presented)
        found: StoredToken | None = None
        for token in self.tokens():
            if hmac.compare_digest(digest, token.sha256):
                found = token
        if found is None:
            return None
        databases = frozenset(found.databases) if found.databases is not None else None
        tools = frozenset(found.tools) if found.tools is not None else None
        return Principal(found.name, databases, issuer="token", tools=tools)

    def add(self, name: str, databases: tuple[str, ...] | None, tools: tuple[str, ...] | None = None) -> str:
        """Create a token for `name` (replacing none: names are unique) that may use `databases` and call
        `tools` (None: all); return it, the only time it is seen."""
        if not _NAME.fullmatch(name):
            raise ConfigError(
                f"Token name {name[:80]!r} is not valid.", "Use letters, digits and . _ @ - (at most 64)."
            )
        existing = list(self.tokens())
        if any(token.name == name for token in existing):
            raise ConfigError(
                f"A token named {name!r} exists already.", f"Revoke it first: pg-mcp token revoke {name}"
            )
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        created = datetime.now(UTC).isoformat(timespec="seconds")
        existing.append(StoredToken(name, _digest(token), databases, created, tools))
        self._write(existing)
        return token

    def revoke(self, name: str) -> None:
        existing = list(self.tokens())
        kept = [token for token in existing if token.name != name]
        if len(kept) == len(existing):
            raise ConfigError(f"No token named {name!r}.", "pg-mcp token list shows the names.")
        self._write(kept)

    def _write(self, tokens: list[StoredToken]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        document = {
            "tokens": [
                {"name": t.name, "sha256": t.sha256, "databases": list(t.databases) if t.databases is not None else None,
                 "created": t.created, **({"tools": list(t.tools)} if t.tools is not None else {})}
                for t in tokens
            ]
        }  # fmt: skip
        fd, temporary = tempfile.mkstemp(dir=self.path.parent, prefix=".tokens-")
        try:
            with os.fdopen(fd, "w") as out:
                json.dump(document, out, indent=2)
            os.chmod(temporary, 0o600)
            os.replace(temporary, self.path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        self._seen = None


def _parse(path: Path) -> tuple[StoredToken, ...]:
    try:
        document: Any = json.loads(path.read_text())
        entries = document["tokens"]
        return tuple(
            StoredToken(
                str(e["name"]),
                str(e["sha256"]).lower(),
                tuple(str(d) for d in e["databases"]) if e.get("databases") is not None else None,
                str(e.get("created", "")),
                tuple(str(t) for t in e["tools"]) if e.get("tools") is not None else None,
            )
            for e in entries
        )
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(
            f"The tokens file {path} cannot be read ({type(exc).__name__}).",
            "Recreate it with pg-mcp token add NAME.",
        ) from None
