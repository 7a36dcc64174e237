"""Prefect's API clients share one TLS context per process (pipelines/prefect_clients.py), and TLS is exactly as
strict as Prefect's own: an HTTPS API with a certificate nobody trusts is refused, the same API is reached with
PREFECT_API_SSL_CERT_FILE naming its certificate or with PREFECT_API_TLS_INSECURE_SKIP_VERIFY, and a caller's own
``verify`` is kept."""

from __future__ import annotations

import datetime
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


def _self_signed(folder):
    """A certificate and key for 127.0.0.1 that no bundle trusts."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
    import ipaddress

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lockgate-test")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_file, key_file = folder / "api.pem", folder / "api.key"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_file, key_file


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = b"true"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def https_api(tmp_path_factory):
    """An HTTPS endpoint on 127.0.0.1 answering every GET; (its API URL, its certificate file)."""
    cert_file, key_file = _self_signed(tmp_path_factory.mktemp("tls"))
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)  # bound and listening before the thread starts
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"https://127.0.0.1:{server.server_address[1]}/api", cert_file
    server.shutdown()
    server.server_close()


def _context_of(client) -> ssl.SSLContext:
    return client._client._transport._pool._ssl_context


def test_clients_share_the_context_prefect_would_build(https_api):
    from prefect.client.orchestration import PrefectClient, SyncPrefectClient

    from pipelines.prefect_clients import share_tls_context

    url, _ = https_api
    assert share_tls_context() and share_tls_context()  # idempotent: wrapped once
    first, second = SyncPrefectClient(url), SyncPrefectClient(url)
    shared = _context_of(first)
    assert _context_of(second) is shared and _context_of(PrefectClient(url)) is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname
    assert shared.cert_store_stats()["x509_ca"] > 100  # certifi's bundle, as Prefect loads it


def test_an_untrusted_certificate_is_refused_as_by_prefect_itself(https_api):
    from prefect.client.orchestration import SyncPrefectClient

    from pipelines.prefect_clients import share_tls_context

    url, _ = https_api
    share_tls_context()
    with SyncPrefectClient(url) as client:
        error = client.api_healthcheck()
    assert error is not None and "CERTIFICATE_VERIFY_FAILED" in str(error)


def test_the_api_certificate_file_and_skip_verify_are_honoured(https_api):
    from prefect.client.orchestration import SyncPrefectClient
    from prefect.settings import PREFECT_API_SSL_CERT_FILE, PREFECT_API_TLS_INSECURE_SKIP_VERIFY, temporary_settings

    from pipelines.prefect_clients import share_tls_context

    url, cert_file = https_api
    share_tls_context()
    default = _context_of(SyncPrefectClient(url))
    with temporary_settings({PREFECT_API_SSL_CERT_FILE: str(cert_file)}):
        with SyncPrefectClient(url) as client, SyncPrefectClient(url) as again:
            assert client.api_healthcheck() is None  # reached, verified against the named certificate
            assert _context_of(again) is _context_of(client) is not default
            assert _context_of(client).cert_store_stats()["x509_ca"] == 1
    with temporary_settings({PREFECT_API_TLS_INSECURE_SKIP_VERIFY: True}):
        with SyncPrefectClient(url) as client:
            assert client.api_healthcheck() is None
            assert _context_of(client).verify_mode == ssl.CERT_NONE and not _context_of(client).check_hostname
    assert _context_of(SyncPrefectClient(url)) is default  # back to the default settings: the default context


def test_a_callers_own_verify_is_kept(https_api):
    from prefect.client.orchestration import SyncPrefectClient

    from pipelines.prefect_clients import share_tls_context

    url, cert_file = https_api
    share_tls_context()
    own = ssl.create_default_context(cafile=str(cert_file))
    with SyncPrefectClient(url, httpx_settings={"verify": own}) as client:
        assert _context_of(client) is own and client.api_healthcheck() is None


@pytest.mark.parametrize("module", ["lifecycle", "batch_inference", "rollback"])
def test_every_flow_module_shares_the_context_at_import(module):
    """At module level, before any of its flows can run (a flow run creates its clients as it starts)."""
    import ast
    from pathlib import Path

    tree = ast.parse((Path(__file__).resolve().parents[2] / "pipelines" / f"{module}.py").read_text())
    calls = [n.value.func.id for n in tree.body if isinstance(n, ast.Expr) and isinstance(n.value, ast.Call)
             and isinstance(n.value.func, ast.Name)]
    assert "share_tls_context" in calls
