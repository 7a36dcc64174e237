"""Object stores for the tests: moto's S3 server and gcp-storage-emulator, each a real HTTP server in a process of
its own on 127.0.0.1 that pyarrow's S3 and GCS filesystems talk to (session fixtures ``s3_server`` and
``gcs_server`` in tests/conftest.py)."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import pytest


@dataclass(frozen=True)
class S3Server:
    """A moto S3 server on 127.0.0.1 with one bucket; ``uri(key)`` is a pyarrow URI that reaches it."""

    endpoint: str  # host:port
    bucket: str

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}?endpoint_override={self.endpoint}&scheme=http"

    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1")

    def keys(self, prefix: str) -> list[str]:
        """Every object key under ``prefix`` (raw, as S3 lists them: temporaries and folder markers included). The
        server lives for the session: each test writes under a prefix of its own."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def uploads_in_progress(self, prefix: str) -> list[str]:
        uploads = self.client().list_multipart_uploads(Bucket=self.bucket, Prefix=prefix).get("Uploads", [])
        return [u["Key"] for u in uploads]


@contextlib.contextmanager
def serve_s3(folder: Path) -> Iterator[S3Server]:
    """`python -m moto.server` on a free port (an S3 API in a process of its own), dummy credentials in the
    environment, a bucket `lockgate`; stopped (SIGTERM, wait) on exit."""
    argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", "{port}"]
    with _server_process(argv, "/moto-api/", folder / "moto.log", "moto server") as port, \
            pytest.MonkeyPatch.context() as mp:
        for k, v in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                     "AWS_DEFAULT_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}.items():
            mp.setenv(k, v)
        mp.delenv("AWS_ENDPOINT_URL", raising=False)
        mp.delenv("AWS_PROFILE", raising=False)
        server = S3Server(endpoint=f"127.0.0.1:{port}", bucket="lockgate")
        server.client().create_bucket(Bucket=server.bucket)
        yield server


@dataclass(frozen=True)
class GcsServer:
    """gcp-storage-emulator (GCS's JSON API) on 127.0.0.1 with one bucket; ``uri(key)`` is a pyarrow URI that reaches
    it. Listings and object metadata come from the JSON API itself (urllib), so they show what is really stored."""

    endpoint: str  # host:port
    bucket: str

    def uri(self, key: str) -> str:
        return f"gs://{self.bucket}/{key}?scheme=http&endpoint_override={self.endpoint}"

    def _get(self, path: str, **query) -> dict:
        import json
        import urllib.parse
        import urllib.request

        url = f"http://{self.endpoint}/storage/v1/b/{self.bucket}{path}?{urllib.parse.urlencode(query)}"
        with urllib.request.urlopen(url, timeout=30) as r:
            return json.load(r)

    def keys(self, prefix: str) -> list[str]:
        """Every object name under ``prefix`` (raw, as GCS lists them: temporaries and folder markers included). The
        server lives for the session: each test writes under a prefix of its own."""
        names, token = [], ""
        while True:
            page = self._get("/o", prefix=prefix, **({"pageToken": token} if token else {}))
            names += [o["name"] for o in page.get("items", [])]
            if not (token := page.get("nextPageToken")):
                return sorted(names)

    def generation(self, key: str) -> str:
        """The object's generation: a new one for every upload (GCS's ETag for "was it rewritten")."""
        import urllib.parse

        return self._get(f"/o/{urllib.parse.quote(key, safe='')}")["generation"]


def _service_account_key(path: Path) -> Path:
    """A throwaway service-account key file (a fresh RSA key, no real account). pyarrow's GCS client always takes
    Google's default credentials for gs:// URIs (the URI cannot ask for anonymous access); with a key file it signs
    its own JWTs, so it never calls a token endpoint, and the emulator does not check them."""
    import json

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    path.write_text(json.dumps({
        "type": "service_account", "project_id": "lockgate-test", "private_key_id": "0" * 40, "private_key": pem,
        "client_email": "tester@lockgate-test.iam.gserviceaccount.com", "client_id": "0",
        "token_uri": "http://127.0.0.1:9/token"}))  # never called (self-signed JWTs); a closed port if it were
    return path


@contextlib.contextmanager
def serve_gcs(folder: Path) -> Iterator[GcsServer]:
    """`python -m gcp_storage_emulator start --in-memory` on a free port (GCS's JSON API in a process of its own) with
    a bucket `lockgate`, and GOOGLE_APPLICATION_CREDENTIALS a throwaway service-account key; stopped (SIGTERM, wait)
    on exit.

    The emulator answers one request at a time (a plain http.server): fine for objects of a few hundred KB, but
    pyarrow's reads of a file over ~2-8 MB (ranged streams open at once, each sent to the end of the object)
    stall it until curl's 120 s timeout. Keep the objects small."""
    argv = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1", "--port", "{port}",
            "--in-memory", "--default-bucket", "lockgate"]
    with _server_process(argv, "/storage/v1/b/lockgate", folder / "gcs-emulator.log", "GCS emulator") as port, \
            pytest.MonkeyPatch.context() as mp:
        mp.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(_service_account_key(folder / "service-account.json")))
        for var in ("CLOUD_STORAGE_EMULATOR_ENDPOINT", "STORAGE_EMULATOR_HOST", "GOOGLE_CLOUD_PROJECT"):
            mp.delenv(var, raising=False)
        yield GcsServer(endpoint=f"127.0.0.1:{port}", bucket="lockgate")


@contextlib.contextmanager
def _server_process(argv: list[str], health_path: str, log: Path, what: str) -> Iterator[int]:
    """Run ``argv`` (``{port}`` replaced by a free port) until its ``health_path`` answers over HTTP; yield the port;
    SIGTERM and wait on exit (SIGKILL after 30 s)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with open(log, "wb") as out:
        proc = subprocess.Popen([a.replace("{port}", str(port)) for a in argv], stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}{health_path}", timeout=1):
                    break
            except OSError:
                assert proc.poll() is None, f"{what} exited with {proc.returncode}: {log.read_text()[-2000:]}"
                assert time.monotonic() < deadline, f"{what} did not answer within 60 s"
                time.sleep(0.2)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def upload_day(server: S3Server | GcsServer, prefix: str, day: date, n: int = 300, seed: int = 0) -> str:
    """A partition ``<prefix>/date=YYYY-MM-DD/part-0.parquet`` of ``n`` synthetic rows in the server's bucket (written
    through pyarrow's filesystem for the URI); returns its key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from data_contracts.synthetic_credit import generate_frame
    from tasks.batch.partition_io import filesystem

    frame = generate_frame(n, seed=seed, day=day, id_offset=day.toordinal() * 10_000).drop(columns=["defaulted"])
    key = f"{prefix}/date={day.isoformat()}/part-0.parquet"
    fs, path = filesystem(server.uri(key))
    pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, filesystem=fs)
    return key
