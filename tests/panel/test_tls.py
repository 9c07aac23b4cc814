"""TLS options against a self-signed HTTPS server: pin, CA bundle, default verify."""

import datetime as dt
import hashlib
import ipaddress
import json
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from bridge import __version__
from bridge.errors import ConfigurationError
from bridge.panel import PanelNotSentError
from tests.panel.conftest import MakeClient

pytestmark = pytest.mark.integration


@dataclass
class TlsPanel:
    url: str
    cert_file: Path
    fingerprint: str
    seen: list[dict[str, str]] = field(default_factory=list)


def _self_signed(directory: Path) -> tuple[Path, Path, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "panel.test")])
    now = dt.datetime.now(dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = directory / "panel.pem", directory / "panel.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    return cert_file, key_file, hashlib.sha256(der).hexdigest()


@pytest.fixture
def tls_panel(tmp_path: Path) -> Iterator[TlsPanel]:
    """A tiny HTTPS server answering /api/v1/* with {} and recording each request."""
    cert_file, key_file, fingerprint = _self_signed(tmp_path)
    seen: list[dict[str, str]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            seen.append(
                {"path": self.path, **{k.lower(): v for k, v in self.headers.items()}}
            )
            body = json.dumps({"username": "admin", "version": "1.4.2"}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_args: object) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    yield TlsPanel(
        f"https://127.0.0.1:{server.server_port}", cert_file, fingerprint, seen
    )
    server.shutdown()
    server.server_close()
    thread.join()


def test_pinned_fingerprint_is_trusted(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    pin = ":".join(tls_panel.fingerprint[i : i + 2] for i in range(0, 64, 2)).upper()
    client = make_client(base_url=tls_panel.url, tls_fingerprint=pin)
    assert client.get_user("admin").status == 200


def test_pin_mismatch_aborts_before_the_request_is_written(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    client = make_client(base_url=tls_panel.url, tls_fingerprint="ab" * 32)
    with pytest.raises(PanelNotSentError, match="fingerprint mismatch"):
        client.get_user("admin")
    assert tls_panel.seen == []


def test_ca_bundle_verifies_the_panel(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    client = make_client(base_url=tls_panel.url, ca_bundle=str(tls_panel.cert_file))
    assert client.get_user("admin").status == 200


def test_default_verification_refuses_a_self_signed_panel(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    client = make_client(base_url=tls_panel.url)
    with pytest.raises(PanelNotSentError):
        client.get_user("admin")
    assert tls_panel.seen == []


def test_verification_off_is_explicit_and_logged(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    with structlog.testing.capture_logs() as logs:
        client = make_client(base_url=tls_panel.url, tls_verify=False)
    assert client.get_user("admin").status == 200
    assert [e["event"] for e in logs] == ["panel_tls_verification_disabled"]


def test_requests_carry_user_agent_and_bearer(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    client = make_client(base_url=tls_panel.url, tls_fingerprint=tls_panel.fingerprint)
    client.get_user("admin")
    (request,) = tls_panel.seen
    assert request["user-agent"] == f"wispanel-bridge/{__version__}"
    assert request["authorization"] == f"Bearer {client.config.api_key}"


def test_connection_report_shows_the_pinned_session(
    make_client: MakeClient, tls_panel: TlsPanel
) -> None:
    client = make_client(base_url=tls_panel.url, tls_fingerprint=tls_panel.fingerprint)
    report = client.test_connection()
    assert report.tls is not None
    assert report.tls.mode == "pin"
    assert report.tls.peer_fingerprint == tls_panel.fingerprint
    assert report.tls.protocol in ("TLSv1.2", "TLSv1.3")


@pytest.mark.parametrize(
    "options",
    [
        {"tls_fingerprint": "not-hex"},
        {
            "tls_fingerprint": "ab" * 32,
            "ca_bundle": "/etc/ssl/certs/ca-certificates.crt",
        },
        {"ca_bundle": "/nonexistent/ca.pem"},
    ],
    ids=["bad-fingerprint", "pin-and-ca", "missing-ca"],
)
def test_contradictory_or_broken_tls_options_fail_at_configuration(
    make_client: MakeClient, options: dict[str, str]
) -> None:
    with pytest.raises(ConfigurationError):
        make_client(base_url="https://127.0.0.1:1", **options)
