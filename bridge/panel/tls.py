"""TLS for panel connections: system/certifi trust, a CA bundle, or a pinned cert.

Pinning (for self-signed panels): the context does not chain-verify, but its socket
class compares the SHA-256 of the peer's DER certificate with the pin inside the
handshake and aborts it on a mismatch, before a byte of the request (or its
Authorization header) is written. It is an exact-match trust decision, never a
silent "verify off". Turning verification off needs `tls_verify=False` and logs a
warning every time a client is built.
"""

import hashlib
import hmac
import re
import socket
import ssl
from dataclasses import dataclass

import httpx
import structlog

from bridge.errors import ConfigurationError
from bridge.panel.schemas import TlsInfo

log = structlog.get_logger(__name__)

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass(frozen=True, slots=True)
class TlsPolicy:
    """What the client trusts; `mode` is "system", "ca_bundle", "pin" or "none"."""

    mode: str
    verify: ssl.SSLContext | bool


def normalise_fingerprint(value: str) -> bytes:
    """Parse a SHA-256 fingerprint ("AB:CD:…", "abcd…", "sha256:…") to 32 bytes.

    Raises ConfigurationError when it is not 64 hex digits.
    """
    text = value.strip().lower().removeprefix("sha256:").replace(":", "")
    if not _HEX64.match(text):
        msg = "tls_fingerprint must be the SHA-256 of the certificate (64 hex digits)"
        raise ConfigurationError(msg)
    return bytes.fromhex(text)


def certificate_fingerprint(der: bytes) -> str:
    """The lower-case hex SHA-256 of a DER certificate (what a pin is compared to)."""
    return hashlib.sha256(der).hexdigest()


def build_tls_policy(
    *,
    server: str,
    verify: bool,
    ca_bundle: str | None,
    fingerprint: str | None,
) -> TlsPolicy:
    """Choose the SSL context for one server's client.

    Raises ConfigurationError for contradictory options or an unreadable CA bundle.
    """
    if fingerprint and ca_bundle:
        msg = "use either tls_fingerprint or ca_bundle, not both"
        raise ConfigurationError(msg)
    if fingerprint:
        return TlsPolicy("pin", pinned_context(fingerprint))
    if not verify:
        log.warning("panel_tls_verification_disabled", server=server)
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        return TlsPolicy("none", context)
    if ca_bundle:
        try:
            return TlsPolicy("ca_bundle", ssl.create_default_context(cafile=ca_bundle))
        except (OSError, ssl.SSLError) as exc:
            msg = f"cannot load ca_bundle {ca_bundle!r}: {exc}"
            raise ConfigurationError(msg) from exc
    return TlsPolicy("system", True)


def pinned_context(fingerprint: str) -> ssl.SSLContext:
    """An SSL context that accepts exactly the certificate with this fingerprint."""
    expected = normalise_fingerprint(fingerprint)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # The pin replaces chain and hostname checks (self-signed certs on bare IPs);
    # the check below runs before the handshake is reported complete.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    context.sslsocket_class = _pinned_socket_class(expected)
    return context


def _pinned_socket_class(expected: bytes) -> type[ssl.SSLSocket]:
    class PinnedSSLSocket(ssl.SSLSocket):
        def do_handshake(self, block: bool = False) -> None:
            super().do_handshake(block)
            der = self.getpeercert(binary_form=True)
            actual = hashlib.sha256(der or b"").digest()
            if der is None or not hmac.compare_digest(actual, expected):
                got = actual.hex() if der else "no certificate"
                msg = f"certificate fingerprint mismatch (got sha256 {got})"
                raise ssl.SSLCertVerificationError(msg)

    return PinnedSSLSocket


def probe_tls(base_url: str, policy: TlsPolicy, timeout: float) -> TlsInfo | None:
    """Open one TLS session the way the client would and describe it (no request).

    None for plain-HTTP panels. Raises OSError (including ssl errors) on failure.
    """
    url = httpx.URL(base_url)
    if url.scheme != "https":
        return None
    context = policy.verify
    if not isinstance(context, ssl.SSLContext):
        context = httpx.create_ssl_context(verify=context)
    port = url.port or 443
    with (
        socket.create_connection((url.host, port), timeout=timeout) as raw,
        context.wrap_socket(raw, server_hostname=url.host) as tls,
    ):
        der = tls.getpeercert(binary_form=True)
        cipher = tls.cipher()
        return TlsInfo(
            mode=policy.mode,
            protocol=tls.version(),
            cipher=cipher[0] if cipher else None,
            peer_fingerprint=certificate_fingerprint(der) if der else None,
        )
