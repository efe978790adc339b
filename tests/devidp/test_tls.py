"""The local CA and the loopback certificate: created once, reused, verifiable, and unable to
vouch for any name outside loopback."""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from entra_ciam.devidp.server import DevIdp
from entra_ciam.devidp.state import StateDir
from entra_ciam.devidp.tls import ensure_tls
from tests.devidp.helpers import tls


def test_ca_and_certificate_are_created_once_and_reused(tmp_path: Path) -> None:
    state = StateDir(tmp_path / "state")
    files = ensure_tls(state)
    ca, cert = files.ca_cert.read_bytes(), files.cert.read_bytes()

    assert ensure_tls(state).cert.read_bytes() == cert  # reused
    files.cert.unlink()
    renewed = ensure_tls(state)
    assert renewed.ca_cert.read_bytes() == ca  # same CA: nothing to re-trust
    assert renewed.cert.read_bytes() != cert

    assert (state.path.stat().st_mode & 0o777) == 0o700
    for name in ("ca-key.pem", "tls-key.pem"):
        assert (state.path / name).stat().st_mode & 0o777 == 0o600


def test_certificate_names_every_loopback_form(tmp_path: Path) -> None:
    files = ensure_tls(StateDir(tmp_path))
    cert = x509.load_pem_x509_certificate(files.cert.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["localhost"]
    assert set(san.get_values_for_type(x509.IPAddress)) == {
        ipaddress.ip_address("127.0.0.1"),
        ipaddress.ip_address("::1"),
    }
    lifetime = cert.not_valid_after_utc - cert.not_valid_before_utc
    assert lifetime <= datetime.timedelta(days=398)


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_back_channel_verifies_with_the_ca_and_only_with_it(devidp: DevIdp, host: str) -> None:
    url = devidp.metadata_url.replace("127.0.0.1", host)
    assert httpx.get(url, verify=tls(devidp)).status_code == 200
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(url)  # the system trust store does not know the local CA


def test_the_ca_cannot_vouch_for_other_names(tmp_path: Path) -> None:
    files = ensure_tls(StateDir(tmp_path))
    ca_cert = x509.load_pem_x509_certificate(files.ca_cert.read_bytes())
    ca_key = serialization.load_pem_private_key(
        (tmp_path / "ca-key.pem").read_bytes(), password=None
    )
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    # Someone with the CA key mints a certificate for a real site...
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    evil = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "example.com")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("example.com")]), False)
        .sign(ca_key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "evil.pem", tmp_path / "evil-key.pem"
    cert_path.write_bytes(evil.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    # ...and a client that trusts the CA still refuses it: the CA is name-constrained.
    with pytest.raises(ssl.SSLCertVerificationError, match="permitted subtree violation"):
        _handshake(files.ca_cert, cert_path, key_path, "example.com")
    # The same machinery accepts the emulator's own certificate.
    _handshake(files.ca_cert, files.cert, files.key, "localhost")


def _handshake(ca: Path, cert: Path, key: Path, hostname: str) -> None:
    """A TLS handshake in memory, no sockets: raises what the client's verification raises."""
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(ca))
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for _ in range(10):
        done = True
        for side, outgoing, incoming in ((client, c_out, s_in), (server, s_out, c_in)):
            try:
                side.do_handshake()
            except ssl.SSLWantReadError:
                done = False
            except ssl.SSLError:
                if side is client:
                    raise
                done = False
            data = outgoing.read()
            if data:
                incoming.write(data)
        if done:
            return
    raise AssertionError("handshake did not finish")
