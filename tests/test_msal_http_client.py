"""MsalHttpClient against real loopback servers, and MSAL Python using it unmodified over TLS.

The TLS server's certificate comes from a throwaway CA written to a temp file, so the test also
shows that ``verify=<CA bundle path>`` is honoured (and that the default trust store refuses it).
"""

from __future__ import annotations

import datetime
import ipaddress
import json
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import msal
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from entra_ciam.http import FetchError, MsalHttpClient, MsalResponse

TENANT = "7d3e1c2a-5b4f-4a8e-9c6d-1f2e3d4c5b6a"
CLIENT_ID = "9b8a7f6e-5d4c-4b3a-8f2e-1d0c9b8a7f6e"
SECRET = "s3cr3t~value"


@dataclass
class Seen:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes


Route = Callable[[Seen], tuple[int, dict[str, str], bytes]]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # clients hang up on purpose here (timeouts, size caps, refused certificates)


@dataclass
class Server:
    """A loopback HTTP(S) server answering from ``routes`` and recording what it saw."""

    routes: dict[str, Route] = field(default_factory=dict)
    seen: list[Seen] = field(default_factory=list)
    tls: ssl.SSLContext | None = None
    base: str = ""

    def start(self) -> Server:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                parts = urlsplit(self.path)
                seen = Seen(
                    self.command,
                    parts.path,
                    parse_qs(parts.query),
                    {k.lower(): v for k, v in self.headers.items()},
                    self.rfile.read(length),
                )
                server.seen.append(seen)
                route = server.routes.get(parts.path)
                status, headers, body = route(seen) if route else (404, {}, b"{}")
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            do_GET = _serve
            do_POST = _serve

        self._httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        if self.tls is not None:
            self._httpd.socket = self.tls.wrap_socket(self._httpd.socket, server_side=True)
        scheme = "https" if self.tls else "http"
        host = "localhost" if self.tls else "127.0.0.1"
        self.base = f"{scheme}://{host}:{self._httpd.server_address[1]}"
        threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def json_answer(obj: Any, status: int = 200) -> Route:
    return lambda _seen: (status, {"Content-Type": "application/json"}, json.dumps(obj).encode())


def echo(seen: Seen) -> tuple[int, dict[str, str], bytes]:
    body = {
        "method": seen.method,
        "query": seen.query,
        "headers": seen.headers,
        "body": seen.body.decode(),
    }
    headers = {"Content-Type": "application/json; charset=utf-8", "X-Trace": "t1"}
    return 200, headers, json.dumps(body).encode()


@pytest.fixture(scope="module")
def plain() -> Iterator[Server]:
    server = Server()
    server.routes["/echo"] = echo
    server.routes["/big"] = lambda _s: (200, {}, b"x" * 200_000)
    server.routes["/redirect"] = lambda _s: (302, {"Location": "https://attacker.example/"}, b"")
    server.routes["/denied"] = json_answer({"error": "invalid_client"}, 401)
    server.routes["/latin1"] = lambda _s: (
        200,
        {"Content-Type": "text/plain; charset=latin-1"},
        b"\xe9",
    )
    server.routes["/bogus-charset"] = lambda _s: (
        200,
        {"Content-Type": "text/plain; charset=nope"},
        b"ok",
    )

    def slow(_seen: Seen) -> tuple[int, dict[str, str], bytes]:
        time.sleep(1.0)
        return 200, {}, b"late"

    server.routes["/slow"] = slow
    server.start()
    yield server
    server.stop()


def test_get_sends_params_and_headers(plain: Server) -> None:
    with MsalHttpClient() as client:
        resp = client.get(
            f"{plain.base}/echo",
            params={"api-version": "1.0", "x": "y"},
            headers={"Accept": "application/json", "client-request-id": None},  # type: ignore[dict-item]
        )
    assert isinstance(resp, MsalResponse)
    assert resp.status_code == 200
    seen = json.loads(resp.text)
    assert seen["method"] == "GET"
    assert seen["query"] == {"api-version": ["1.0"], "x": ["y"]}
    assert seen["headers"]["accept"] == "application/json"
    assert "client-request-id" not in seen["headers"]
    assert resp.headers["x-trace"] == "t1"
    resp.raise_for_status()


def test_post_form_data_and_raw_string(plain: Server) -> None:
    client = MsalHttpClient()
    try:
        form = client.post(
            f"{plain.base}/echo",
            data={"grant_type": "client_credentials", "scope": "a b", "skip": None},
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        seen = json.loads(form.text)
        assert seen["method"] == "POST"
        assert parse_qs(seen["body"]) == {"grant_type": ["client_credentials"], "scope": ["a b"]}
        raw = client.post(
            f"{plain.base}/echo",
            params={"p": "1"},
            data="<soap:Envelope/>",
            headers={"Content-Type": "application/soap+xml"},
        )
        seen = json.loads(raw.text)
        assert seen["body"] == "<soap:Envelope/>"
        assert seen["query"] == {"p": ["1"]}
        assert seen["headers"]["content-type"] == "application/soap+xml"
    finally:
        client.close()


def test_error_status_is_returned_then_raised(plain: Server) -> None:
    with MsalHttpClient() as client:
        resp = client.post(f"{plain.base}/denied", data={})
    assert resp.status_code == 401
    assert json.loads(resp.text) == {"error": "invalid_client"}
    with pytest.raises(httpx.HTTPStatusError, match="HTTP 401"):
        resp.raise_for_status()


def test_redirects_are_not_followed(plain: Server) -> None:
    with MsalHttpClient() as client:
        resp = client.get(f"{plain.base}/redirect")
    assert resp.status_code == 302
    assert resp.headers["location"] == "https://attacker.example/"
    assert [s.path for s in plain.seen].count("/redirect") == 1


def test_body_is_capped(plain: Server) -> None:
    with MsalHttpClient(max_bytes=100_000) as client, pytest.raises(FetchError, match="more than"):
        client.get(f"{plain.base}/big")
    with MsalHttpClient() as client:
        assert len(client.get(f"{plain.base}/big").text) == 200_000


def test_timeouts(plain: Server) -> None:
    with MsalHttpClient(timeout=0.2) as client, pytest.raises(httpx.TimeoutException):
        client.get(f"{plain.base}/slow")
    with MsalHttpClient() as client, pytest.raises(httpx.TimeoutException):
        client.get(f"{plain.base}/slow", timeout=0.2)  # MSAL-style per-call timeout


def test_charsets(plain: Server) -> None:
    with MsalHttpClient() as client:
        assert client.get(f"{plain.base}/latin1").text == "\u00e9"
        assert client.get(f"{plain.base}/bogus-charset").text == "ok"


def test_connection_refused_is_an_httpx_error() -> None:
    with MsalHttpClient() as client, pytest.raises(httpx.ConnectError):
        client.get("http://127.0.0.1:9/")


def test_verify_false_is_refused() -> None:
    with pytest.raises(ValueError, match="verify=False"):
        MsalHttpClient(verify=False)


# -- MSAL Python over TLS with a private CA ------------------------------------------------------


def _tls_files(directory: Path) -> tuple[Path, ssl.SSLContext]:
    now = datetime.datetime.now(datetime.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "entra-ciam test CA")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([x509.OID_SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path = directory / "ca.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    cert_path = directory / "server.pem"
    cert_path.write_bytes(
        leaf.public_bytes(serialization.Encoding.PEM)
        + key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path)
    return ca_path, context


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Server, Path]]:
    ca_path, context = _tls_files(tmp_path_factory.mktemp("tls"))
    server = Server(tls=context).start()
    authority = f"{server.base}/{TENANT}/v2.0"
    server.routes[f"/{TENANT}/v2.0/.well-known/openid-configuration"] = json_answer(
        {
            "issuer": authority,
            "authorization_endpoint": f"{server.base}/{TENANT}/oauth2/v2.0/authorize",
            "token_endpoint": f"{server.base}/{TENANT}/oauth2/v2.0/token",
            "end_session_endpoint": f"{server.base}/{TENANT}/oauth2/v2.0/logout",
            "jwks_uri": f"{server.base}/{TENANT}/discovery/v2.0/keys",
        }
    )

    def token(seen: Seen) -> tuple[int, dict[str, str], bytes]:
        form = parse_qs(seen.body.decode())
        if form.get("client_secret") != [SECRET]:
            return json_answer({"error": "invalid_client", "error_description": "bad secret"}, 401)(
                seen
            )
        answer = {
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": "at-for-" + form["scope"][0],
        }
        return json_answer(answer)(seen)

    server.routes[f"/{TENANT}/oauth2/v2.0/token"] = token
    yield server, ca_path
    server.stop()


def _app(server: Server, http_client: Any, secret: str = SECRET) -> Any:
    return msal.ConfidentialClientApplication(
        CLIENT_ID,
        client_credential=secret,
        oidc_authority=f"{server.base}/{TENANT}/v2.0",
        http_client=http_client,
    )


def test_msal_uses_the_client_unmodified_with_a_ca_bundle(idp: tuple[Server, Path]) -> None:
    server, ca_path = idp
    with MsalHttpClient(verify=str(ca_path)) as http_client:
        app = _app(server, http_client)
        result = app.acquire_token_for_client(scopes=["api://todo/.default"])
    assert result.get("access_token") == "at-for-api://todo/.default", result
    posts = [s for s in server.seen if s.method == "POST"]
    assert posts
    form = parse_qs(posts[-1].body.decode())
    assert form["grant_type"] == ["client_credentials"]
    assert form["client_id"] == [CLIENT_ID]


def test_msal_error_answers_reach_the_caller(idp: tuple[Server, Path]) -> None:
    server, ca_path = idp
    with MsalHttpClient(verify=str(ca_path)) as http_client:
        result = _app(server, http_client, secret="wrong").acquire_token_for_client(
            scopes=["api://todo/.default"]
        )
    assert result["error"] == "invalid_client"
    assert result["error_description"] == "bad secret"


def test_default_trust_store_refuses_the_private_ca(idp: tuple[Server, Path]) -> None:
    server, _ca_path = idp
    with MsalHttpClient() as http_client, pytest.raises(httpx.ConnectError, match="CERTIFICATE"):
        _app(server, http_client)


def test_sign_in_logs_name_a_tls_verification_failure_and_its_fix(
    idp: tuple[Server, Path],
) -> None:
    """Issue 16, point 5, on the sign-in side: what the log says when Entra's certificate is
    not trusted (the visitor's page says only that sign-in is unavailable)."""
    from entra_ciam import EntraConfig
    from entra_ciam.signin.msal_app import IdentityProviderUnavailableError, MsalClients

    server, ca_path = idp
    settings = {"authority": f"{server.base}/{TENANT}", "client_id": CLIENT_ID}
    untrusting = MsalClients(EntraConfig(**settings, client_secret=SECRET))
    with pytest.raises(IdentityProviderUnavailableError) as info:
        untrusting.build()
    message = str(info.value)
    assert "failed TLS certificate verification (" in message
    assert "fix: " in message and "ENTRA_CA_BUNDLE" in message
    trusting = MsalClients(EntraConfig(**settings, client_secret=SECRET, ca_bundle=str(ca_path)))
    assert trusting.build() is not None
