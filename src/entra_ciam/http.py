"""HTTP clients with the timeouts, TLS trust and size limits every outbound call needs.

Discovery, keys and MSAL's token calls all leave through here, so a slow or hostile endpoint can
stall a request for a few seconds at most and can never make us buffer more than a known limit.
"""

from __future__ import annotations

import asyncio
import os
import ssl
import time
from collections.abc import Mapping
from typing import Any

import httpx

from entra_ciam import telemetry as _telemetry
from entra_ciam.errors import EntraCiamError

__all__ = [
    "CA_BUNDLE_REMEDY",
    "DEFAULT_TIMEOUT",
    "TOTAL_TIMEOUT",
    "BodyLimit",
    "FetchError",
    "MsalHttpClient",
    "MsalResponse",
    "VerifyTypes",
    "afetch",
    "create_async_client",
    "create_client",
    "describe_transport_error",
    "fetch",
    "ssl_context",
]

VerifyTypes = str | bool | ssl.SSLContext

# Per operation: connect, then each read/write. TOTAL_TIMEOUT bounds a whole response body.
DEFAULT_TIMEOUT = httpx.Timeout(5.0, connect=3.0, pool=3.0)
TOTAL_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1024 * 1024
_USER_AGENT = "entra-ciam"


class FetchError(EntraCiamError):
    """A fetch failed: transport error, timeout, non-2xx status or an oversized body.

    ``url`` is what was fetched, ``reason`` what went wrong (a TLS verification failure is named
    as such) and ``remedy`` what an operator can do about it. All three are for logs and local
    tools only: the URL may be internal, so none of it goes into a response. The message is
    ``GET <url> <reason>``; it never quotes a response body.
    """

    def __init__(self, url: str, reason: str, remedy: str = "") -> None:
        super().__init__(f"GET {url} {reason}")
        self.url = url
        self.reason = reason
        self.remedy = remedy


# The setting that makes a private or corporate CA trusted, named in every TLS remedy.
CA_BUNDLE_REMEDY = (
    "if this host's certificate is issued by a private or corporate CA (a TLS-inspecting "
    "proxy, the local emulator), pass that CA's certificate as the CA bundle: "
    "verify='/path/to/ca.pem' (EntraConfig ca_bundle, ENTRA_CA_BUNDLE=/path/to/ca.pem); "
    "otherwise the certificate is not the identity provider's: check the URL and the network"
)


def describe_transport_error(exc: BaseException) -> tuple[str, str]:
    """``(reason, remedy)`` for a failed connection, naming TLS verification failures as such.

    httpx wraps the ``ssl`` error in its own (``ConnectError``), so the cause chain is searched.
    """
    seen: set[int] = set()
    cause: BaseException | None = exc
    while cause is not None and id(cause) not in seen:
        seen.add(id(cause))
        if isinstance(cause, ssl.SSLCertVerificationError):
            detail = cause.verify_message or cause.reason or "certificate verify failed"
            return f"failed TLS certificate verification ({detail})", CA_BUNDLE_REMEDY
        if isinstance(cause, ssl.SSLError):
            return (
                f"failed the TLS handshake ({cause.reason or type(cause).__name__})",
                "check that the URL's scheme and port are those of an https server",
            )
        cause = cause.__cause__ or cause.__context__
    name = type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return (
            f"failed: {name} (no answer in time)",
            "check that this host can reach the identity provider (firewall, proxy: HTTPS_PROXY)",
        )
    first_line = str(exc).splitlines()[0][:200] if str(exc) else ""
    return (
        f"failed: {name}" + (f" ({first_line})" if first_line else ""),
        "check the URL (the authority's host) and that this host can reach it: DNS, firewall, "
        "proxy (HTTPS_PROXY)",
    )


def _status_remedy(status: int) -> str:
    if 300 <= status < 400:
        return "redirects are not followed: configure the URL the redirect points to"
    if status == 404:
        return (
            "check the authority: the tenant (subdomain, tenant id) must exist and serve "
            "<authority>/v2.0/.well-known/openid-configuration"
        )
    if status >= 500 or status == 429:
        return "the identity provider is failing or throttling: it is retried automatically"
    return "check the URL and that this host may fetch it"


def ssl_context(verify: VerifyTypes = True) -> ssl.SSLContext:
    """What httpx takes as ``verify``: its default trust store, or a context for a CA bundle.

    Built once per client owner: loading a trust store costs milliseconds.

    ``False`` is refused: a validator that trusts any certificate trusts any signing key.
    """
    if isinstance(verify, ssl.SSLContext):
        return verify
    if verify is True:
        return httpx.create_ssl_context()  # certifi, or SSL_CERT_FILE / SSL_CERT_DIR
    if verify is False:
        raise ValueError(
            "verify=False would trust any TLS certificate; pass a CA bundle path instead "
            "(for example ENTRA_CA_BUNDLE=/etc/ssl/certs/corporate-proxy-ca.pem)"
        )
    if not isinstance(verify, str) or not verify:
        raise ValueError(f"verify must be True or a CA bundle path, got {verify!r}")
    if os.path.isdir(verify):
        return ssl.create_default_context(capath=verify)
    return ssl.create_default_context(cafile=verify)


def _client_options(verify: VerifyTypes, timeout: httpx.Timeout | float) -> dict[str, Any]:
    return {
        "verify": ssl_context(verify),
        "timeout": timeout,
        "follow_redirects": False,
        # identity: a compressed answer could expand past the byte limit within one chunk
        "headers": {
            "User-Agent": _USER_AGENT,
            "Accept": "application/json",
            "Accept-Encoding": "identity",
        },
        "limits": httpx.Limits(max_connections=20, max_keepalive_connections=5),
    }


def create_client(
    verify: VerifyTypes = True, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT
) -> httpx.Client:
    """A sync client for metadata and keys: bounded timeouts, no redirects followed."""
    return httpx.Client(**_client_options(verify, timeout))


def create_async_client(
    verify: VerifyTypes = True, *, timeout: httpx.Timeout | float = DEFAULT_TIMEOUT
) -> httpx.AsyncClient:
    """The async twin of :func:`create_client`."""
    return httpx.AsyncClient(**_client_options(verify, timeout))


_NOT_IT = "check that the URL serves what is expected (a discovery document, a JWKS, a token)"
_SLOW = "the answer came too slowly: check the network path and proxy; it is retried"


class BodyLimit:
    """Sans-IO guard over one streamed response: status, declared length, bytes and deadline.

    Both drivers feed it chunks, so sync and async enforce the same rules.
    """

    __slots__ = ("_chunks", "_deadline", "_received", "max_bytes", "url")

    def __init__(self, url: str, max_bytes: int, total_timeout: float = TOTAL_TIMEOUT) -> None:
        self.url = url
        self.max_bytes = max_bytes
        self._deadline = time.monotonic() + total_timeout
        self._received = 0
        self._chunks: list[bytes] = []

    def start(self, response: httpx.Response) -> None:
        """Check the status and any declared length before reading the body."""
        status = response.status_code
        if not 200 <= status < 300:
            raise FetchError(self.url, f"answered HTTP {status}", _status_remedy(status))
        declared = response.headers.get("Content-Length")
        if declared is not None:
            try:
                length = int(declared)
            except ValueError:
                raise FetchError(self.url, "sent a bad Content-Length", _NOT_IT) from None
            if length > self.max_bytes:
                raise FetchError(
                    self.url,
                    f"declared {length} bytes, over the {self.max_bytes} byte limit",
                    _NOT_IT,
                )

    def feed(self, chunk: bytes) -> None:
        self._received += len(chunk)
        if self._received > self.max_bytes:
            raise FetchError(self.url, f"sent more than {self.max_bytes} bytes", _NOT_IT)
        if time.monotonic() > self._deadline:
            raise FetchError(self.url, "took too long", _SLOW)
        self._chunks.append(chunk)

    def body(self) -> bytes:
        return b"".join(self._chunks)


def fetch(
    client: httpx.Client,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    total_timeout: float = TOTAL_TIMEOUT,
) -> bytes:
    """GET ``url`` and return its body; raise FetchError on any failure."""
    guard = BodyLimit(url, max_bytes, total_timeout)
    try:
        with (
            _telemetry.idp_call("GET", url, keys=True) as call,
            client.stream("GET", url) as response,
        ):
            call.status(response.status_code)
            guard.start(response)
            for chunk in response.iter_bytes():
                guard.feed(chunk)
    except httpx.HTTPError as exc:
        raise FetchError(url, *describe_transport_error(exc)) from exc
    return guard.body()


async def afetch(
    client: httpx.AsyncClient,
    url: str,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    total_timeout: float = TOTAL_TIMEOUT,
) -> bytes:
    """The async twin of :func:`fetch`."""
    guard = BodyLimit(url, max_bytes, total_timeout)
    try:
        with _telemetry.idp_call("GET", url, keys=True) as call:
            async with asyncio.timeout(total_timeout), client.stream("GET", url) as response:
                call.status(response.status_code)
                guard.start(response)
                async for chunk in response.aiter_bytes():
                    guard.feed(chunk)
    except httpx.HTTPError as exc:
        raise FetchError(url, *describe_transport_error(exc)) from exc
    except TimeoutError:
        raise FetchError(url, f"took longer than {total_timeout:g} s", _SLOW) from None
    return guard.body()


def _decode(body: bytes, charset: str | None) -> str:
    try:
        return body.decode(charset or "utf-8", errors="replace")
    except LookupError:  # an unknown charset name
        return body.decode("utf-8", errors="replace")


class MsalResponse:
    """The response shape MSAL reads: status_code, text, headers and raise_for_status()."""

    __slots__ = ("headers", "status_code", "text", "url")

    def __init__(self, status_code: int, text: str, headers: dict[str, str], url: str) -> None:
        self.status_code = status_code
        self.text = text
        # MSAL expects duplicate headers joined with commas; httpx's items() already does that.
        self.headers = headers
        self.url = url

    def raise_for_status(self) -> None:
        if self.status_code >= 400:
            raise httpx.HTTPStatusError(
                f"HTTP {self.status_code} from {self.url}",
                request=httpx.Request("GET", self.url),
                response=httpx.Response(self.status_code),
            )

    def __repr__(self) -> str:
        return f"<MsalResponse {self.status_code} {self.url}>"


class MsalHttpClient:
    """The ``http_client=`` MSAL Python takes, on httpx with our timeouts and CA bundle.

    Redirects are not followed and bodies are capped: token endpoints answer directly and small.
    Transport failures raise ``httpx.HTTPError`` (MSAL lets them through to the caller).
    """

    def __init__(
        self,
        verify: VerifyTypes = True,
        *,
        timeout: httpx.Timeout | float = DEFAULT_TIMEOUT,
        max_bytes: int = DEFAULT_MAX_BYTES,
        client: httpx.Client | None = None,
    ) -> None:
        self._client = client if client is not None else create_client(verify, timeout=timeout)
        self._max_bytes = max_bytes

    def get(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        return self._send("GET", url, params=params, headers=headers, timeout=kwargs.get("timeout"))

    def post(
        self,
        url: str,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | str | bytes | None = None,
        headers: Mapping[str, str] | None = None,
        **kwargs: Any,
    ) -> MsalResponse:
        return self._send(
            "POST", url, params=params, headers=headers, data=data, timeout=kwargs.get("timeout")
        )

    def _send(
        self,
        method: str,
        url: str,
        *,
        params: Mapping[str, Any] | None,
        headers: Mapping[str, str] | None,
        data: Mapping[str, Any] | str | bytes | None = None,
        timeout: Any = None,
    ) -> MsalResponse:
        options: dict[str, Any] = {"params": dict(params) if params else None}
        if headers:
            # MSAL sometimes sends None values (e.g. no correlation id): drop them.
            options["headers"] = {k: v for k, v in headers.items() if v is not None}
        if isinstance(data, str | bytes):
            options["content"] = data
        elif data is not None:
            options["data"] = {k: v for k, v in data.items() if v is not None}
        if isinstance(timeout, int | float) and not isinstance(timeout, bool):
            options["timeout"] = httpx.Timeout(float(timeout), connect=min(3.0, float(timeout)))
        guard = BodyLimit(url, self._max_bytes)
        with (
            _telemetry.idp_call(method, url) as call,
            self._client.stream(method, url, **options) as response,
        ):
            call.status(response.status_code)
            for chunk in response.iter_bytes():
                guard.feed(chunk)
            return MsalResponse(
                response.status_code,
                _decode(guard.body(), response.charset_encoding),
                dict(response.headers.items()),
                url,
            )

    def close(self) -> None:
        self._client.close()

    def __enter__(self) -> MsalHttpClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
