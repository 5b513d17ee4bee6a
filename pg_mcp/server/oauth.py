"""OAuth 2.1 resource server: JWT access tokens from an organisation's identity provider.

The HTTP transport hands each bearer token to `JwtVerifier.verify`, which returns the caller's
`Principal` or raises `AuthFailure` (401 invalid_token, 403 insufficient_scope, 503 when the
identity provider's keys cannot be fetched). Tokens are verified with PyJWT against the issuer's
JWKS: only the configured asymmetric algorithms (never `none`, never HMAC), the issuer, the
audience (this server's resource URL, RFC 8707), the expiry and not-before times, and the required
scopes. Keys are fetched by PyJWKClient in a worker thread, within `jwks_timeout`, one fetch at a
time; they are kept, and still used when the identity provider is unreachable later. A token is
never logged and never part of a message.

`protected_resource_metadata` is the RFC 9728 document clients read to find the authorization
server, served at `/.well-known/oauth-protected-resource`.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import re
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from pg_mcp import __version__
from pg_mcp.errors import ConfigError
from pg_mcp.server.principal import Principal

log = logging.getLogger(__name__)

#: The path of the protected resource metadata (RFC 9728 §3); the resource's own path follows it.
RESOURCE_METADATA_PATH = "/.well-known/oauth-protected-resource"

#: Asymmetric signature algorithms PyJWT verifies with public keys from a JWKS.
SUPPORTED_ALGORITHMS = frozenset(
    {"RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA"}
)
#: Longer than any access token an identity provider issues; longer ones are refused unread.
MAX_TOKEN_CHARS = 16_384
#: Largest discovery document read.
MAX_METADATA_BYTES = 1_000_000
#: The most a JSON Web Key Set may weigh (a real one is a few kilobytes).
MAX_JWKS_BYTES = 1_000_000

_SCOPE_TOKEN = re.compile(r"^[\x21\x23-\x5b\x5d-\x7e]+$")  # RFC 6749 §3.3 scope-token
_CLAIM_NAME = re.compile(r"^[A-Za-z0-9_.:/-]{1,128}$")
_LIST_SEPARATORS = re.compile(r"[\s,]+")
_UNAVAILABLE = "the identity provider's keys could not be fetched"
#: The description of a 503: the keys could not be fetched in time, or not at all.
UNAVAILABLE_DESCRIPTION = "The identity provider's keys could not be fetched; try again shortly."


@dataclass(frozen=True)
class OAuthSettings:
    """How access tokens are verified; `check` runs on construction and raises ConfigError."""

    #: The authorization server's issuer identifier, exactly as tokens carry it in `iss`.
    issuer: str
    #: This server's resource identifier (its public MCP URL, e.g. https://db.example.com/mcp):
    #: tokens must name it in `aud` (RFC 8707), and it is the metadata's `resource`.
    audience: str
    #: The JWKS URL; None: the `jwks_uri` of the issuer's OpenID Connect or RFC 8414 metadata.
    jwks_url: str | None = None
    algorithms: tuple[str, ...] = ("RS256", "ES256")
    #: Scopes every token must carry (in `scope`, space-separated, or `scp`).
    required_scopes: tuple[str, ...] = ()
    #: The claim listing the databases a caller may use (a list, or a space or comma-separated
    #: string; "*" means all). A token without it may use none. None: every token may use all.
    databases_claim: str | None = "pg_mcp_databases"
    #: The claim naming the caller (the principal's name in limits and the audit log).
    subject_claim: str = "sub"
    #: Seconds of clock difference tolerated on `exp`, `nbf` and `iat`.
    leeway: float = 30.0
    #: Seconds a request waits for the identity provider's keys before 503.
    jwks_timeout: float = 3.0
    #: Seconds after which the keys are fetched again (in the background; the old ones still serve).
    jwks_cache_seconds: float = 300.0
    #: Fewest seconds between fetches an unknown key id or a failed refresh may cause (while no key
    #: was ever fetched, a failed fetch is retried after at most a second).
    jwks_min_refetch_seconds: float = 30.0

    def __post_init__(self) -> None:
        self.check()

    def check(self) -> None:
        _check_url("issuer", self.issuer, "PG_MCP_OAUTH_ISSUER")
        _check_url("audience", self.audience, "PG_MCP_OAUTH_AUDIENCE", https_only=False)
        if self.jwks_url is not None:
            _check_url("JWKS URL", self.jwks_url, "PG_MCP_OAUTH_JWKS_URL")
        if not self.algorithms:
            raise ConfigError("No token signing algorithm is allowed.", "Allow RS256 and/or ES256.")
        for alg in self.algorithms:
            if alg.lower() == "none" or alg.upper().startswith("HS"):
                raise ConfigError(
                    f"The token algorithm {alg!r} is refused.",
                    "Only asymmetric algorithms verified with the identity provider's public keys are "
                    "accepted (e.g. RS256, ES256); 'none' and HMAC (HS*) never are.",
                )
            if alg not in SUPPORTED_ALGORITHMS:
                raise ConfigError(
                    f"The token algorithm {alg[:40]!r} is not supported.",
                    f"Use some of {', '.join(sorted(SUPPORTED_ALGORITHMS))}.",
                )
        for scope in self.required_scopes:
            if not _SCOPE_TOKEN.fullmatch(scope):
                raise ConfigError(
                    f"The scope {scope[:80]!r} is not valid.",
                    'Scopes are printable ASCII without spaces, " or \\.',
                )
        for what, claim in (("databases", self.databases_claim), ("subject", self.subject_claim)):
            if claim is not None and not _CLAIM_NAME.fullmatch(claim):
                raise ConfigError(f"The {what} claim name {claim[:80]!r} is not valid.")
        if not 0 <= self.leeway <= 300:
            raise ConfigError(f"The clock leeway {self.leeway} is out of range.", "Use 0 to 300 seconds.")
        if not 0 < self.jwks_timeout <= 60:
            raise ConfigError(
                f"The JWKS timeout {self.jwks_timeout} is out of range.", "Use up to 60 seconds."
            )
        if not 0 < self.jwks_cache_seconds <= 86_400:
            raise ConfigError(f"The JWKS cache time {self.jwks_cache_seconds} is out of range.")
        if not 0 <= self.jwks_min_refetch_seconds <= 3600:
            raise ConfigError(f"The JWKS refetch interval {self.jwks_min_refetch_seconds} is out of range.")


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _check_url(what: str, url: str, env: str, https_only: bool = True) -> None:
    parts = urlsplit(url)
    secure = parts.scheme == "https" or (parts.scheme == "http" and _is_loopback(parts.hostname or ""))
    if (
        not parts.hostname
        or parts.fragment
        or parts.scheme not in ("http", "https")
        or (https_only and not secure)
    ):
        raise ConfigError(
            f"The OAuth {what} {url[:200]!r} is not a valid URL.",
            f"Set {env} to an https:// URL without a fragment (http:// only for a loopback address).",
        )


def resource_metadata_path(settings: OAuthSettings) -> str:
    """Where RFC 9728 §3.1 puts the metadata of `audience`: the well-known path, then the resource's path."""
    return RESOURCE_METADATA_PATH + urlsplit(settings.audience).path.rstrip("/")


def resource_metadata_url(settings: OAuthSettings) -> str:
    """The metadata's absolute URL, named in every `WWW-Authenticate` challenge."""
    parts = urlsplit(settings.audience)
    return f"{parts.scheme}://{parts.netloc}{resource_metadata_path(settings)}"


def protected_resource_metadata(settings: OAuthSettings) -> dict[str, Any]:
    """The RFC 9728 protected resource metadata document."""
    document: dict[str, Any] = {
        "resource": settings.audience,
        "authorization_servers": [settings.issuer],
        "bearer_methods_supported": ["header"],
        "resource_name": "pg-mcp",
    }
    if settings.required_scopes:
        document["scopes_supported"] = list(settings.required_scopes)
    return document


def _quoted(value: str) -> str:
    """A quoted-string RFC 6750 §3 allows: printable ASCII without `"` and `\\`."""
    return '"' + "".join(c for c in value if c == " " or ("\x21" <= c <= "\x7e" and c not in '"\\')) + '"'


def challenge(resource_metadata_url: str, scopes: tuple[str, ...] = ()) -> str:
    """`WWW-Authenticate` for a request without a token: no error code (RFC 6750 §3.1)."""
    value = "Bearer "
    if scopes:
        value += f"scope={_quoted(' '.join(scopes))}, "
    return value + f"resource_metadata={_quoted(resource_metadata_url)}"


class AuthFailure(Exception):
    """Why a token was not accepted: the HTTP status, the RFC 6750 error code and a description that
    is safe to send (it never contains the token)."""

    def __init__(self, status: int, error: str, description: str, scope: str | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        #: The scopes the resource requires, sent with insufficient_scope (and as a hint otherwise).
        self.scope = scope

    def www_authenticate(self, resource_metadata_url: str) -> str:
        """The `WWW-Authenticate` value (RFC 6750 §3, RFC 9728 §5.1)."""
        parts = [f"error={_quoted(self.error)}", f"error_description={_quoted(self.description)}"]
        if self.scope:
            parts.append(f"scope={_quoted(self.scope)}")
        parts.append(f"resource_metadata={_quoted(resource_metadata_url)}")
        return "Bearer " + ", ".join(parts)

    def headers(self, resource_metadata_url: str) -> dict[str, str]:
        """Response headers: the challenge, and `Retry-After` when the keys were unavailable."""
        headers = {"www-authenticate": self.www_authenticate(resource_metadata_url)}
        if self.status == 503:
            headers["retry-after"] = "5"
        return headers

    def body(self) -> dict[str, str]:
        """A JSON body for the response, in the shape of an OAuth error response."""
        return {"error": self.error, "error_description": self.description}

    def __repr__(self) -> str:
        return f"AuthFailure({self.status}, {self.error!r}, {self.description!r})"


def _unavailable() -> AuthFailure:
    return AuthFailure(503, "temporarily_unavailable", UNAVAILABLE_DESCRIPTION)


def _invalid(description: str, scope: str | None = None) -> AuthFailure:
    return AuthFailure(401, "invalid_token", description, scope)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


class JwtVerifier:
    """Verifies access tokens against one issuer; keeps its keys between requests."""

    def __init__(self, settings: OAuthSettings) -> None:
        self.settings = settings
        self._scope_hint = " ".join(settings.required_scopes) or None
        self._jwks_url = settings.jwks_url
        self._keys: dict[str, jwt.PyJWK] | None = None
        self._fetched_at = 0.0
        self._attempted_at: float | None = None
        self._fetch: asyncio.Task[bool] | None = None

    async def verify(self, token: str) -> Principal:
        """The token's principal (its address is left for the transport to fill in), or AuthFailure."""
        kid = self._kid(token)
        key = await self._key(kid)
        claims = self._decode(token, key)
        subject = claims.get(self.settings.subject_claim)
        if not isinstance(subject, str) or not subject:
            raise _invalid(f"The token names no subject ({self.settings.subject_claim}).", self._scope_hint)
        granted = _scopes(claims)
        missing = [scope for scope in self.settings.required_scopes if scope not in granted]
        if missing:
            raise AuthFailure(
                403,
                "insufficient_scope",
                f"The token lacks the scope{'s' if len(missing) > 1 else ''} {' '.join(missing)}.",
                " ".join(self.settings.required_scopes),
            )
        return Principal(subject, self._databases(claims), issuer=self.settings.issuer)

    def _kid(self, token: str) -> str:
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            raise _invalid("The token is malformed.", self._scope_hint)
        try:
            header = jwt.get_unverified_header(token)
        except (jwt.PyJWTError, ValueError):  # ValueError: e.g. a string that is not UTF-8
            raise _invalid("The token is malformed.", self._scope_hint) from None
        if header.get("alg") not in self.settings.algorithms:
            raise _invalid(
                f"The token's signing algorithm is not accepted (only {', '.join(self.settings.algorithms)}).",
                self._scope_hint,
            )
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _invalid("The token names no signing key (kid).", self._scope_hint)
        return kid

    def _decode(self, token: str, key: jwt.PyJWK) -> dict[str, Any]:
        settings = self.settings
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(settings.algorithms),
                audience=settings.audience,
                issuer=settings.issuer,
                leeway=settings.leeway,
                options={"require": ["exp", "iss", "aud"], "enforce_minimum_key_length": True},
            )
        except (jwt.PyJWTError, ValueError) as exc:
            raise _invalid(_describe(exc), self._scope_hint) from None
        return claims

    def _databases(self, claims: dict[str, Any]) -> frozenset[str] | None:
        claim = self.settings.databases_claim
        if claim is None:
            return None
        value = claims.get(claim)
        if value is None:
            return frozenset()
        if isinstance(value, str):
            names = _LIST_SEPARATORS.split(value)
        elif isinstance(value, list) and all(isinstance(name, str) for name in value):
            names = [name.strip() for name in value]
        else:
            raise _invalid(f"The {claim} claim is not a list of database names.", self._scope_hint)
        found = frozenset(name for name in names if name)
        return None if "*" in found else found

    # -- keys ----------------------------------------------------------------------------------

    async def _key(self, kid: str) -> jwt.PyJWK:
        """The signing key `kid`: from the keys kept if known (starting a background refresh when they
        are old), else after one fetch (rate-limited for unknown ids), within jwks_timeout."""
        now = time.monotonic()
        keys = self._keys
        if keys is not None:
            key = keys.get(kid)
            if key is not None:
                if now - self._fetched_at >= self.settings.jwks_cache_seconds and self._may_fetch(now):
                    self._start_fetch(now)
                return key
            if not self._may_fetch(now):
                raise _invalid(
                    "The token's signing key is not one of the identity provider's.", self._scope_hint
                )
        elif not self._may_fetch(now, min(1.0, self.settings.jwks_min_refetch_seconds)):
            raise _unavailable()  # no key yet, and a fetch failed just now
        fetched = await self._await_fetch(now)
        key = (self._keys or {}).get(kid)
        if key is not None:
            return key
        if not fetched:
            raise _unavailable()
        raise _invalid("The token's signing key is not one of the identity provider's.", self._scope_hint)

    def _may_fetch(self, now: float, interval: float | None = None) -> bool:
        if self._fetch is not None and not self._fetch.done():
            return True  # join the fetch under way
        wait = self.settings.jwks_min_refetch_seconds if interval is None else interval
        return self._attempted_at is None or now - self._attempted_at >= wait

    def _start_fetch(self, now: float) -> asyncio.Task[bool]:
        if self._fetch is None or self._fetch.done():
            self._attempted_at = now
            self._fetch = asyncio.get_running_loop().create_task(self._fetch_keys())
        return self._fetch

    async def _await_fetch(self, now: float) -> bool:
        task = self._start_fetch(now)
        try:
            return await asyncio.wait_for(asyncio.shield(task), self.settings.jwks_timeout)
        except TimeoutError:
            return False  # the fetch goes on, and logs its outcome

    async def _fetch_keys(self) -> bool:
        """One fetch in a worker thread; it outlives a request that stops waiting, and keeps its keys."""
        try:
            url, keys = await asyncio.to_thread(self._fetch_blocking)
        except Exception as exc:
            kept = "" if self._keys is None else f"; the {len(self._keys)} keys fetched before still serve"
            log.warning("%s: %s: %s%s", _UNAVAILABLE, type(exc).__name__, str(exc)[:300], kept)
            return False
        self._jwks_url = url
        self._keys = keys
        self._fetched_at = time.monotonic()
        log.info("fetched %d signing keys from %s", len(keys), url)
        return True

    def _fetch_blocking(self) -> tuple[str, dict[str, jwt.PyJWK]]:
        """Discovery (when needed) and the key set, both within one jwks_timeout overall (a server that
        trickles bytes is cut off) and at most MAX_JWKS_BYTES."""
        deadline = time.monotonic() + self.settings.jwks_timeout
        url = self._jwks_url or self._discover(deadline)
        document = json.loads(self._read(url, deadline, MAX_JWKS_BYTES))
        if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
            raise ValueError(f"{url} is not a JSON Web Key Set")
        keys: dict[str, jwt.PyJWK] = {}
        for key in jwt.PyJWKSet.from_dict(document).keys:
            # only keys for an allowed algorithm: an HMAC ("oct") key in the set is never used
            if (
                key.key_id
                and key.public_key_use in (None, "sig")
                and key.algorithm_name in self.settings.algorithms
            ):
                keys.setdefault(key.key_id, key)
        if not keys:
            raise ValueError(f"no signing key at {url} for {', '.join(self.settings.algorithms)}")
        return url, keys

    def _read(self, url: str, deadline: float, limit: int) -> bytes:
        """A response body read in pieces until `deadline` (monotonic) and `limit` bytes; redirects are
        not followed (an issuer's keys come from where it says)."""
        opener = urllib.request.build_opener(_NoRedirects())
        headers = {"User-Agent": f"pg-mcp/{__version__}", "Accept": "application/json"}
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"no time left to read {url}")
        with opener.open(urllib.request.Request(url, headers=headers), timeout=remaining) as response:
            body = bytearray()
            while chunk := response.read1(65536):
                body += chunk
                if len(body) > limit:
                    raise ValueError(f"{url} sent more than {limit} bytes")
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{url} did not arrive within {self.settings.jwks_timeout:g} s")
            return bytes(body)

    def _discover(self, deadline: float) -> str:
        """The issuer's `jwks_uri`: OpenID Connect discovery, then RFC 8414 metadata."""
        issuer = self.settings.issuer
        parts = urlsplit(issuer)
        path = parts.path.rstrip("/")
        candidates = [
            f"{issuer.rstrip('/')}/.well-known/openid-configuration",
            f"{parts.scheme}://{parts.netloc}/.well-known/oauth-authorization-server{path}",
        ]
        last: Exception | None = None
        for candidate in candidates:
            try:
                document = json.loads(self._read(candidate, deadline, MAX_METADATA_BYTES))
            except urllib.error.HTTPError as exc:
                exc.close()
                last = exc
                continue  # e.g. 404: try the other well-known location
            if not isinstance(document, dict):
                raise ValueError(f"{candidate} is not a JSON object")
            if document.get("issuer") != issuer:
                raise ValueError(
                    f"{candidate} names another issuer; the configured issuer must match exactly"
                )
            jwks_uri = document.get("jwks_uri")
            if not isinstance(jwks_uri, str):
                raise ValueError(f"{candidate} names no jwks_uri")
            try:
                _check_url("JWKS URL", jwks_uri, "PG_MCP_OAUTH_JWKS_URL")
            except ConfigError as exc:
                raise ValueError(exc.message) from None
            return jwks_uri
        raise ValueError(f"no authorization server metadata for {issuer} ({last})")


def _scopes(claims: dict[str, Any]) -> set[str]:
    """Scopes granted: `scope` (space-separated, RFC 9068) and `scp` (a list, or a string as Entra sends)."""
    granted: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            granted.update(value.split())
        elif isinstance(value, list):
            granted.update(scope for scope in value if isinstance(scope, str))
    return granted


#: What was wrong with a token, by PyJWT's exception (first match; subclasses before their bases).
_TOKEN_PROBLEMS: tuple[tuple[type[Exception], str], ...] = (
    (jwt.ExpiredSignatureError, "The token has expired."),
    (jwt.ImmatureSignatureError, "The token is not valid yet."),
    (jwt.InvalidIssuerError, "The token was issued by another issuer."),
    (jwt.InvalidAudienceError, "The token is not for this server (audience)."),
    (jwt.exceptions.InvalidSubjectError, "The token's subject (sub) is not valid."),
    (jwt.InvalidSignatureError, "The token's signature does not verify."),
    (jwt.InvalidAlgorithmError, "The token's algorithm does not match its signing key."),
    (jwt.InvalidKeyError, "The token's signing key is not acceptable."),
    (jwt.DecodeError, "The token is malformed."),
)


def _describe(exc: Exception) -> str:
    """What was wrong with a token, from PyJWT's exception; never its text, which may quote the token."""
    if isinstance(exc, jwt.MissingRequiredClaimError):
        return (
            f"The token lacks the {exc.claim} claim."
            if _CLAIM_NAME.fullmatch(exc.claim)
            else "A claim is missing."
        )
    return next((text for kind, text in _TOKEN_PROBLEMS if isinstance(exc, kind)), "The token is not valid.")
