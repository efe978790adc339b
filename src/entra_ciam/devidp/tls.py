"""A local certificate authority and a loopback server certificate, created on first start.

MSAL Python accepts only https authorities, so the back channel needs TLS that clients can verify
without switching verification off. The CA is name-constrained to loopback names and addresses:
even if someone trusts it system-wide and its key leaks, it cannot vouch for any other site.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from entra_ciam.devidp.state import StateDir, StateError

__all__ = ["TlsFiles", "ensure_tls", "server_ssl_context"]

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
SERVER_CERT = "tls-cert.pem"
SERVER_KEY = "tls-key.pem"

_DNS_NAMES = ("localhost",)
_IP_ADDRESSES = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
_CA_DAYS = 10 * 365
_SERVER_DAYS = 397  # within what browsers accept for a server certificate
_RENEW_BEFORE = datetime.timedelta(days=30)


@dataclasses.dataclass(frozen=True, slots=True)
class TlsFiles:
    ca_cert: Path  # give this to clients: EntraConfig(ca_bundle=...), verify=...
    cert: Path
    key: Path


def ensure_tls(state: StateDir) -> TlsFiles:
    """Create or renew the CA and server certificate in ``state``; reuse them when still good."""
    ca_key, ca_cert = _load_or_create_ca(state)
    if not _server_cert_is_good(state, ca_cert):
        _create_server_cert(state, ca_key, ca_cert)
    return TlsFiles(state.file(CA_CERT), state.file(SERVER_CERT), state.file(SERVER_KEY))


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert, files.key)
    return context


# -- the CA -----------------------------------------------------------------------------------


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _load_or_create_ca(state: StateDir) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key_pem, cert_pem = state.read_bytes(CA_KEY), state.read_bytes(CA_CERT)
    if key_pem and cert_pem:
        try:
            key = serialization.load_pem_private_key(key_pem, password=None)
            cert = x509.load_pem_x509_certificate(cert_pem)
        except ValueError as exc:
            raise StateError(
                f"the local CA in {state.path} is damaged; delete {CA_CERT} and {CA_KEY} to create "
                "a new one (and trust the new ca.pem where you trusted the old one)"
            ) from exc
        if isinstance(key, ec.EllipticCurvePrivateKey) and cert.not_valid_after_utc - _now() > (
            _RENEW_BEFORE
        ):
            return key, cert
    return _create_ca(state)


def _create_ca(state: StateDir) -> tuple[ec.EllipticCurvePrivateKey, x509.Certificate]:
    key = ec.generate_private_key(ec.SECP256R1())
    label = f"entra-ciam dev-idp local CA ({socket.gethostname()[:40]}, {_now():%Y-%m-%d %H:%M})"
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "entra-ciam dev-idp"),
            x509.NameAttribute(NameOID.COMMON_NAME, label[:64]),
        ]
    )
    start = _now() - datetime.timedelta(minutes=5)
    public = key.public_key()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_CA_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=False,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.NameConstraints(
                permitted_subtrees=[
                    x509.DNSName("localhost"),
                    x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
                    x509.IPAddress(ipaddress.ip_network("::1/128")),
                ],
                excluded_subtrees=None,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(public), critical=False)
        .sign(key, hashes.SHA256())
    )
    state.write_bytes(CA_KEY, _key_pem(key))
    state.write_bytes(CA_CERT, cert.public_bytes(serialization.Encoding.PEM))
    state.remove(SERVER_CERT)  # signed by the old CA, if any
    return key, cert


# -- the server certificate -------------------------------------------------------------------


def _server_cert_is_good(state: StateDir, ca_cert: x509.Certificate) -> bool:
    cert_pem, key_pem = state.read_bytes(SERVER_CERT), state.read_bytes(SERVER_KEY)
    if not cert_pem or not key_pem:
        return False
    try:
        cert = x509.load_pem_x509_certificates(cert_pem)[0]
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        key = serialization.load_pem_private_key(key_pem, password=None)
    except (ValueError, x509.ExtensionNotFound):
        return False
    return (
        cert.issuer == ca_cert.subject
        and cert.not_valid_after_utc - _now() > _RENEW_BEFORE
        and set(_DNS_NAMES) <= set(san.get_values_for_type(x509.DNSName))
        and set(_IP_ADDRESSES) <= set(san.get_values_for_type(x509.IPAddress))
        and key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        == cert.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )


def _create_server_cert(
    state: StateDir, ca_key: ec.EllipticCurvePrivateKey, ca_cert: x509.Certificate
) -> None:
    key = ec.generate_private_key(ec.SECP256R1())
    start = _now() - datetime.timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=_SERVER_DAYS))
        .add_extension(
            x509.SubjectAlternativeName(
                [
                    *(x509.DNSName(n) for n in _DNS_NAMES),
                    *(x509.IPAddress(a) for a in _IP_ADDRESSES),
                ]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    state.write_bytes(SERVER_KEY, _key_pem(key))
    state.write_bytes(SERVER_CERT, cert.public_bytes(serialization.Encoding.PEM))


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
