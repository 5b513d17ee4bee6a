"""OAuth resource server: JWT access tokens verified against a real identity provider on loopback.

The identity provider is a stdlib HTTP server in a thread serving OpenID Connect discovery and a JWKS
with an RSA and an EC key; tokens are signed with PyJWT. No database is needed. Times in tokens are an
hour from now either way, far outside the leeway, so no assertion depends on the clock.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from pg_mcp.errors import ConfigError
from pg_mcp.server.oauth import (
    UNAVAILABLE_DESCRIPTION,
    AuthFailure,
    JwtVerifier,
    OAuthSettings,
    challenge,
    protected_resource_metadata,
    resource_metadata_path,
    resource_metadata_url,
)
from pg_mcp.server.principal import Principal

AUDIENCE = "https://db.example.com/mcp"
HOUR = 3600
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
ROTATED_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
HMAC_SECRET = b"a shared secret the JWKS should never have published"


def _jwk(public: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = RSAAlgorithm if alg.startswith("RS") else ECAlgorithm
    return {**algorithm.to_jwk(public, as_dict=True), "kid": kid, "alg": alg, "use": "sig"}


class Issuer:
    """An identity provider on a free loopback port: discovery documents and a JWKS that tests may change."""

    def __init__(self, oidc: bool = True, rfc8414: bool = False, metadata_issuer: str | None = None) -> None:
        self.keys = [_jwk(RSA_KEY.public_key(), "rsa-1", "RS256"), _jwk(EC_KEY.public_key(), "ec-1", "ES256")]
        self.hits: dict[str, int] = {}
        #: Seconds between two bytes of the JWKS (a provider that trickles), and bytes of padding in it.
        self.trickle = 0.0
        self.padding = 0
        issuer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                issuer.hits[self.path] = issuer.hits.get(self.path, 0) + 1
                metadata = {"issuer": metadata_issuer or issuer.url, "jwks_uri": f"{issuer.url}/jwks"}
                jwks: dict[str, Any] = {"keys": issuer.keys}
                if issuer.padding:
                    jwks["padding"] = "x" * issuer.padding
                documents: dict[str, Any] = {"/jwks": jwks}
                if oidc:
                    documents["/.well-known/openid-configuration"] = metadata
                if rfc8414:
                    documents["/.well-known/oauth-authorization-server"] = metadata
                document = documents.get(self.path)
                body = json.dumps(document if document is not None else {"error": "not found"}).encode()
                self.send_response(200 if document is not None else 404)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                if self.path == "/jwks" and issuer.trickle:
                    try:
                        for byte in body:
                            self.wfile.write(bytes([byte]))
                            self.wfile.flush()
                            time.sleep(issuer.trickle)
                    except OSError:  # the client gave up
                        return
                    return
                with contextlib.suppress(OSError):  # a client that stopped reading (a key set too big)
                    self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def stop(self) -> None:
        """Shut down and close the port: connections are refused from now on."""
        if self.thread.is_alive():
            self.server.shutdown()
            self.thread.join()
        self.server.server_close()


@pytest.fixture
def issuer() -> Iterator[Issuer]:
    server = Issuer()
    yield server
    server.stop()


def settings(issuer_url: str, **overrides: Any) -> OAuthSettings:
    given: dict[str, Any] = {"issuer": issuer_url, "audience": AUDIENCE, "required_scopes": ("db:read",)}
    return OAuthSettings(**{**given, **overrides})


def claims(issuer_url: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    given: dict[str, Any] = {
        "iss": issuer_url,
        "aud": AUDIENCE,
        "sub": "alice@example.com",
        "iat": now,
        "exp": now + HOUR,
        "scope": "openid db:read",
        "pg_mcp_databases": ["sales", "hr"],
    }
    return {key: value for key, value in {**given, **overrides}.items() if value is not None}


def rs256(payload: dict[str, Any], kid: str = "rsa-1", key: Any = RSA_KEY) -> str:
    return jwt.encode(payload, key, algorithm="RS256", headers={"kid": kid})


def es256(payload: dict[str, Any], kid: str = "ec-1") -> str:
    return jwt.encode(payload, EC_KEY, algorithm="ES256", headers={"kid": kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def hs256(payload: dict[str, Any], secret: bytes, kid: str) -> str:
    """Signed by hand: PyJWT itself refuses to use a PEM public key as an HMAC secret."""
    signing_input = f"{_b64(json.dumps({'alg': 'HS256', 'typ': 'JWT', 'kid': kid}).encode())}.{_b64(json.dumps(payload).encode())}"
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{_b64(signature)}"


async def failure(verifier: JwtVerifier, token: str) -> AuthFailure:
    with pytest.raises(AuthFailure) as caught:
        await verifier.verify(token)
    if token:
        assert token not in str(caught.value) and token not in caught.value.www_authenticate("x")
    return caught.value


# -- accepted tokens ---------------------------------------------------------------------------------


async def test_rs256_and_es256_tokens_give_the_subject_and_its_databases(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    assert await verifier.verify(rs256(claims(issuer.url))) == Principal(
        "alice@example.com", frozenset({"sales", "hr"}), issuer=issuer.url
    )
    assert await verifier.verify(es256(claims(issuer.url, sub="bob", pg_mcp_databases="sales, hr ops"))) == (
        Principal("bob", frozenset({"sales", "hr", "ops"}), issuer=issuer.url)
    )
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}  # keys are kept


async def test_concurrent_first_requests_share_one_fetch(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    tokens = [
        rs256(claims(issuer.url, sub=f"user{i}")) if i % 2 else es256(claims(issuer.url)) for i in range(20)
    ]
    principals = await asyncio.gather(*(verifier.verify(token) for token in tokens))
    assert {p.name for p in principals} == {"alice@example.com"} | {f"user{i}" for i in range(1, 20, 2)}
    assert issuer.hits == {"/.well-known/openid-configuration": 1, "/jwks": 1}


async def test_the_databases_claim(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    assert (await verifier.verify(rs256(claims(issuer.url, pg_mcp_databases=None)))).databases == frozenset()
    assert (await verifier.verify(rs256(claims(issuer.url, pg_mcp_databases=["*"])))).databases is None
    bad = await failure(verifier, rs256(claims(issuer.url, pg_mcp_databases={"sales": True})))
    assert (bad.status, bad.error) == (401, "invalid_token")
    everything = JwtVerifier(settings(issuer.url, databases_claim=None))
    assert (await everything.verify(rs256(claims(issuer.url, pg_mcp_databases=None)))).databases is None
    custom = JwtVerifier(settings(issuer.url, databases_claim="groups", subject_claim="oid"))
    token = rs256(claims(issuer.url, groups="sales", oid="0000-1111"))
    assert await custom.verify(token) == Principal("0000-1111", frozenset({"sales"}), issuer=issuer.url)


async def test_scopes_from_scope_or_scp(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url, required_scopes=("db:read", "db:explain")))
    assert await verifier.verify(rs256(claims(issuer.url, scope=None, scp=["db:read", "db:explain"])))
    assert await verifier.verify(rs256(claims(issuer.url, scope="db:read", scp="db:explain")))
    open_verifier = JwtVerifier(settings(issuer.url, required_scopes=()))
    assert await open_verifier.verify(rs256(claims(issuer.url, scope=None)))


async def test_rfc8414_metadata_and_an_explicit_jwks_url() -> None:
    only_8414 = Issuer(oidc=False, rfc8414=True)
    try:
        verifier = JwtVerifier(settings(only_8414.url))
        assert (await verifier.verify(rs256(claims(only_8414.url)))).name == "alice@example.com"
        explicit = Issuer(oidc=False)
        try:
            verifier = JwtVerifier(settings(explicit.url, jwks_url=f"{explicit.url}/jwks"))
            assert await verifier.verify(es256(claims(explicit.url)))
            assert explicit.hits == {"/jwks": 1}
        finally:
            explicit.stop()
    finally:
        only_8414.stop()


# -- refused tokens ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("change", "description"),
    [
        ({"exp": -HOUR}, "expired"),
        ({"nbf": HOUR}, "not valid yet"),
        ({"iat": HOUR}, "not valid yet"),
        ({"iss": "https://evil.example.com"}, "another issuer"),
        ({"aud": "https://other.example.com/mcp"}, "audience"),
        ({"aud": None}, "aud"),
        ({"exp": None}, "exp"),
        ({"sub": None}, "subject"),
        ({"sub": 42}, "subject"),
    ],
)
async def test_invalid_claims_are_401(issuer: Issuer, change: dict[str, Any], description: str) -> None:
    now = int(time.time())
    payload = claims(
        issuer.url, **{k: now + v if k in ("exp", "nbf", "iat") and v else v for k, v in change.items()}
    )
    for token in (rs256(payload), es256(payload)):
        refused = await failure(JwtVerifier(settings(issuer.url)), token)
        assert (refused.status, refused.error) == (401, "invalid_token")
        assert description in refused.description


async def test_an_audience_list_naming_this_server_is_accepted(issuer: Issuer) -> None:
    token = rs256(claims(issuer.url, aud=["https://other.example.com", AUDIENCE]))
    assert await JwtVerifier(settings(issuer.url)).verify(token)


async def test_a_missing_scope_is_403_naming_it(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url, required_scopes=("db:read", "db:admin")))
    refused = await failure(verifier, rs256(claims(issuer.url, scope="openid db:read")))
    assert (refused.status, refused.error) == (403, "insufficient_scope")
    assert "db:admin" in refused.description and "db:read" not in refused.description
    header = refused.www_authenticate("https://db.example.com/.well-known/oauth-protected-resource/mcp")
    assert header == (
        'Bearer error="insufficient_scope", error_description="The token lacks the scope db:admin.", '
        'scope="db:read db:admin", '
        'resource_metadata="https://db.example.com/.well-known/oauth-protected-resource/mcp"'
    )


async def test_alg_none_is_refused_before_any_key_is_fetched(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    for alg in ("none", "None", "NONE"):
        token = f"{_b64(json.dumps({'alg': alg, 'kid': 'rsa-1'}).encode())}.{_b64(json.dumps(claims(issuer.url)).encode())}."
        refused = await failure(verifier, token)
        assert (refused.status, refused.error) == (401, "invalid_token")
        assert "algorithm" in refused.description
    refused = await failure(
        verifier, jwt.encode(claims(issuer.url), "", algorithm="none", headers={"kid": "rsa-1"})
    )
    assert refused.status == 401
    assert issuer.hits == {}


async def test_hs256_signed_with_the_public_key_is_refused(issuer: Issuer) -> None:
    """The algorithm-confusion attack: the RSA public key (which anyone can fetch) as an HMAC secret."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    verifier = JwtVerifier(settings(issuer.url))
    for secret in (pem, pem.strip()):
        refused = await failure(verifier, hs256(claims(issuer.url), secret, "rsa-1"))
        assert (refused.status, refused.error) == (401, "invalid_token")
    # nor a symmetric key the JWKS publishes: it is never taken as a signing key
    issuer.keys.append({"kty": "oct", "k": _b64(HMAC_SECRET), "kid": "hmac-1", "alg": "HS256"})
    fresh = JwtVerifier(settings(issuer.url))
    refused = await failure(fresh, hs256(claims(issuer.url), HMAC_SECRET, "hmac-1"))
    assert refused.status == 401
    assert await fresh.verify(rs256(claims(issuer.url)))
    refused = await failure(fresh, rs256(claims(issuer.url), kid="hmac-1"))
    assert (refused.status, refused.error) == (401, "invalid_token")


async def test_the_token_algorithm_must_match_its_key(issuer: Issuer) -> None:
    """An ES256 token naming the RSA key's id, and one signed with the EC key as the RSA key."""
    verifier = JwtVerifier(settings(issuer.url))
    refused = await failure(verifier, es256(claims(issuer.url), kid="rsa-1"))
    assert (refused.status, refused.error) == (401, "invalid_token")
    only_rsa = JwtVerifier(settings(issuer.url, algorithms=("RS256",)))
    refused = await failure(only_rsa, es256(claims(issuer.url)))
    assert "algorithm" in refused.description


async def test_a_tampered_payload_fails_the_signature(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    for token in (rs256(claims(issuer.url)), es256(claims(issuer.url))):
        header, _, signature = token.split(".")
        forged = _b64(json.dumps(claims(issuer.url, sub="root", pg_mcp_databases=["*"])).encode())
        refused = await failure(verifier, f"{header}.{forged}.{signature}")
        assert (refused.status, refused.error) == (401, "invalid_token")
        assert "signature" in refused.description
    # signed by another key under the known key id
    refused = await failure(verifier, rs256(claims(issuer.url), key=ROTATED_KEY))
    assert "signature" in refused.description


async def test_an_unknown_kid_is_401_and_refetches_rate_limited(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url))
    assert await verifier.verify(rs256(claims(issuer.url)))
    for _ in range(3):
        refused = await failure(verifier, rs256(claims(issuer.url), kid="rsa-2", key=ROTATED_KEY))
        assert (refused.status, refused.error) == (401, "invalid_token")
        assert "signing key" in refused.description
    assert issuer.hits["/jwks"] == 1  # within the refetch interval: no fetch per unknown id


async def test_a_rotated_key_is_fetched_once_for_its_kid(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url, jwks_min_refetch_seconds=0))
    assert await verifier.verify(rs256(claims(issuer.url)))
    issuer.keys = [_jwk(ROTATED_KEY.public_key(), "rsa-2", "RS256")]
    assert await verifier.verify(rs256(claims(issuer.url), kid="rsa-2", key=ROTATED_KEY))
    assert issuer.hits["/jwks"] == 2
    refused = await failure(verifier, rs256(claims(issuer.url), kid="rsa-3", key=RSA_KEY))
    assert refused.status == 401
    assert issuer.hits["/jwks"] == 3


@pytest.mark.parametrize(
    "token",
    [
        "",
        "abc",
        "a.b",
        "a.b.c",
        "....",
        "Bearer x.y.z",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "é.é.é",
        "\ud800.a.b",
        "x" * 20_000,
    ],
)
async def test_malformed_tokens_are_401(issuer: Issuer, token: str) -> None:
    refused = await failure(JwtVerifier(settings(issuer.url)), token)
    assert (refused.status, refused.error) == (401, "invalid_token")
    assert issuer.hits == {}


async def test_a_token_without_kid_is_401(issuer: Issuer) -> None:
    token = jwt.encode(claims(issuer.url), RSA_KEY, algorithm="RS256")
    refused = await failure(JwtVerifier(settings(issuer.url)), token)
    assert "kid" in refused.description


# -- the identity provider unavailable ---------------------------------------------------------------


async def test_keys_unreachable_before_first_use_is_503(issuer: Issuer) -> None:
    url = issuer.url
    issuer.stop()
    verifier = JwtVerifier(settings(url))
    refused = await failure(verifier, rs256(claims(url)))
    assert (refused.status, refused.error, refused.description) == (
        503, "temporarily_unavailable", UNAVAILABLE_DESCRIPTION
    )  # fmt: skip
    assert refused.headers("https://db.example.com/m")["retry-after"] == "5"
    # asked again at once, it answers 503 without another attempt
    assert (await failure(verifier, es256(claims(url)))).status == 503


async def test_a_hanging_identity_provider_is_503_within_the_timeout() -> None:
    """A listening socket that never answers: the request returns once jwks_timeout has passed."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        verifier = JwtVerifier(settings(url, jwks_timeout=0.2))
        refused = await failure(verifier, rs256(claims(url)))
        assert refused.status == 503


async def test_discovery_naming_another_issuer_is_503() -> None:
    mixed_up = Issuer(metadata_issuer="https://evil.example.com")
    try:
        refused = await failure(JwtVerifier(settings(mixed_up.url)), rs256(claims(mixed_up.url)))
        assert refused.status == 503
        assert "/jwks" not in mixed_up.hits
    finally:
        mixed_up.stop()


async def test_known_keys_still_verify_when_the_identity_provider_goes_down(issuer: Issuer) -> None:
    # the keys are old at once, so every verification also tries (and fails) to refresh them
    verifier = JwtVerifier(settings(issuer.url, jwks_cache_seconds=0.001, jwks_min_refetch_seconds=0))
    assert await verifier.verify(rs256(claims(issuer.url)))
    issuer.stop()
    for _ in range(3):
        assert (await verifier.verify(rs256(claims(issuer.url)))).name == "alice@example.com"
        assert (await verifier.verify(es256(claims(issuer.url)))).name == "alice@example.com"
    # a key id it has not seen cannot be looked up: unavailable, not invalid
    assert (await failure(verifier, rs256(claims(issuer.url), kid="rsa-2", key=ROTATED_KEY))).status == 503
    # and invalid tokens are still refused
    assert (await failure(verifier, rs256(claims(issuer.url, exp=int(time.time()) - HOUR)))).status == 401


# -- headers, metadata, settings ---------------------------------------------------------------------


def test_www_authenticate_headers() -> None:
    metadata = "https://db.example.com/.well-known/oauth-protected-resource/mcp"
    invalid = AuthFailure(401, "invalid_token", 'The token has "expired".\\')
    assert invalid.www_authenticate(metadata) == (
        'Bearer error="invalid_token", error_description="The token has expired.", '
        f'resource_metadata="{metadata}"'
    )
    assert invalid.headers(metadata) == {"www-authenticate": invalid.www_authenticate(metadata)}
    assert invalid.body() == {"error": "invalid_token", "error_description": 'The token has "expired".\\'}
    assert challenge(metadata) == f'Bearer resource_metadata="{metadata}"'
    assert challenge(metadata, ("db:read",)) == f'Bearer scope="db:read", resource_metadata="{metadata}"'


async def test_401s_hint_the_required_scopes(issuer: Issuer) -> None:
    refused = await failure(JwtVerifier(settings(issuer.url)), "not-a-token")
    header = refused.www_authenticate("https://m")
    assert 'error="invalid_token"' in header and 'scope="db:read"' in header
    assert 'resource_metadata="https://m"' in header


def test_protected_resource_metadata() -> None:
    configured = OAuthSettings(
        issuer="https://login.example.com/realms/acme", audience=AUDIENCE, required_scopes=("db:read",)
    )
    assert protected_resource_metadata(configured) == {
        "resource": AUDIENCE,
        "authorization_servers": ["https://login.example.com/realms/acme"],
        "scopes_supported": ["db:read"],
        "bearer_methods_supported": ["header"],
        "resource_name": "pg-mcp",
    }
    assert resource_metadata_path(configured) == "/.well-known/oauth-protected-resource/mcp"
    assert (
        resource_metadata_url(configured) == "https://db.example.com/.well-known/oauth-protected-resource/mcp"
    )
    root = OAuthSettings(issuer="https://login.example.com", audience="https://db.example.com/")
    assert resource_metadata_path(root) == "/.well-known/oauth-protected-resource"
    assert "scopes_supported" not in protected_resource_metadata(root)


@pytest.mark.parametrize(
    "overrides",
    [
        {"algorithms": ("RS256", "none")},
        {"algorithms": ("None",)},
        {"algorithms": ("HS256",)},
        {"algorithms": ("ES256", "hs512")},
        {"algorithms": ("XS999",)},
        {"algorithms": ()},
        {"issuer": "http://login.example.com"},  # plain http only on loopback
        {"issuer": "login.example.com"},
        {"jwks_url": "file:///etc/passwd"},
        {"audience": "db.example.com"},
        {"required_scopes": ("db read",)},
        {"databases_claim": ""},
        {"subject_claim": 'sub"'},
        {"leeway": -1},
        {"jwks_timeout": 0},
    ],
)
def test_settings_are_refused(overrides: dict[str, Any]) -> None:
    given: dict[str, Any] = {"issuer": "https://login.example.com", "audience": AUDIENCE}
    with pytest.raises(ConfigError):
        OAuthSettings(**{**given, **overrides})


def test_settings_defaults() -> None:
    configured = OAuthSettings(issuer="http://127.0.0.1:9/", audience="http://localhost:8000/mcp")
    assert configured.algorithms == ("RS256", "ES256")
    assert configured.databases_claim == "pg_mcp_databases" and configured.subject_claim == "sub"
    assert configured.jwks_url is None and configured.leeway == 30


async def test_a_trickling_or_huge_key_set_is_cut_off_and_recovery_is_prompt(issuer: Issuer) -> None:
    verifier = JwtVerifier(settings(issuer.url, jwks_timeout=0.5, jwks_min_refetch_seconds=0))
    issuer.trickle = 0.2  # a JWKS of a few hundred bytes would take a minute
    assert (await failure(verifier, rs256(claims(issuer.url)))).status == 503
    issuer.trickle = 0.0
    recovered = None
    for _ in range(50):  # the trickled fetch ended at its deadline: the next one can start
        try:
            recovered = await verifier.verify(rs256(claims(issuer.url)))
            break
        except AuthFailure:
            await asyncio.sleep(0.2)
    assert recovered is not None and recovered.name == "alice@example.com"
    huge = JwtVerifier(settings(issuer.url, jwks_timeout=5))
    issuer.padding = 5_000_000
    assert (await failure(huge, rs256(claims(issuer.url)))).status == 503, "a key set over 1 MB is refused"
