"""TLS to PostgreSQL: a wrong CA or a wrong host name is named as a TLS problem, with what to check."""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import DemoDatabase
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from factories import database_for

from pg_mcp.errors import DatabaseUnavailableError


def _certificate(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: tuple[str, ec.EllipticCurvePrivateKey] | None
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    issuer_name, signer = issuer or (name, key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer_name)]))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
    )
    if issuer is None:
        builder = builder.add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    else:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
    return builder.sign(signer, hashes.SHA256())


def _pem(item: x509.Certificate | ec.EllipticCurvePrivateKey) -> str:
    if isinstance(item, x509.Certificate):
        return item.public_bytes(serialization.Encoding.PEM).decode()
    return item.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


@pytest.fixture
def tls_server(pg: DemoDatabase, tmp_path: Path) -> Iterator[dict[str, Path]]:
    """The demo cluster serving TLS with a certificate for `db.example` signed by a CA of the test's."""
    import asyncio

    ca_key, wrong_key, server_key = (ec.generate_private_key(ec.SECP256R1()) for _ in range(3))
    ca = _certificate("pg-mcp test CA", ca_key, None)
    wrong_ca = _certificate("another CA", wrong_key, None)
    server = _certificate("db.example", server_key, ("pg-mcp test CA", ca_key))
    files = {"ca": tmp_path / "ca.pem", "wrong_ca": tmp_path / "wrong-ca.pem"}
    files["ca"].write_text(_pem(ca))
    files["wrong_ca"].write_text(_pem(wrong_ca))

    async def configure(on: bool) -> None:
        if on:
            directory = (await pg.admin_fetch("SHOW data_directory"))[0][0]
            if not Path(directory).is_dir():
                pytest.skip("the cluster's files are not on this machine (a container)")
            owner = Path(directory).stat()
            for name, text in (("test-server.crt", _pem(server)), ("test-server.key", _pem(server_key))):
                path = Path(directory) / name  # the cluster runs on this machine, as its own OS user
                path.write_text(text)
                path.chmod(0o600)
                os.chown(path, owner.st_uid, owner.st_gid)
            for sql in ("ALTER SYSTEM SET ssl_cert_file = 'test-server.crt'",
                        "ALTER SYSTEM SET ssl_key_file = 'test-server.key'", "ALTER SYSTEM SET ssl = on"):  # fmt: skip
                await pg.admin_fetch(sql)
        else:
            for sql in (
                "ALTER SYSTEM RESET ssl",
                "ALTER SYSTEM RESET ssl_cert_file",
                "ALTER SYSTEM RESET ssl_key_file",
            ):
                await pg.admin_fetch(sql)
        await pg.admin_fetch("SELECT pg_reload_conf()")

    asyncio.run(configure(True))
    try:
        yield files
    finally:
        asyncio.run(configure(False))


async def _connect(url: str) -> str | None:
    db = database_for(url, connect_timeout=5)
    try:
        await db.connect()
        rows = await db.fetch_fixed("SELECT ssl FROM pg_catalog.pg_stat_ssl WHERE pid = pg_backend_pid()")
        return None if rows and rows[0][0] else "not encrypted"
    except DatabaseUnavailableError as exc:
        return f"{exc.message}\n{exc.hint}"
    finally:
        await db.close()


def test_a_wrong_ca_or_host_name_is_named_as_tls(pg: DemoDatabase, tls_server: dict[str, Path]) -> None:
    import asyncio

    def url(mode: str, ca: Path) -> str:
        return f"{pg.url}?sslmode={mode}&sslrootcert={ca}"

    wrong_ca = asyncio.run(_connect(url("verify-full", tls_server["wrong_ca"])))
    wrong_host = asyncio.run(_connect(url("verify-full", tls_server["ca"])))
    right_ca = asyncio.run(_connect(url("verify-ca", tls_server["ca"])))
    assert wrong_ca is not None and wrong_ca.startswith("TLS:") and "sslrootcert" in wrong_ca, wrong_ca
    assert "malformed" not in wrong_ca
    assert wrong_host is not None and wrong_host.startswith("TLS:") and "host" in wrong_host, wrong_host
    assert right_ca is None, right_ca
