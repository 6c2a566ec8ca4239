"""gs:// specifics the object-store contract does not cover: which gcsfs filesystem talks to
an emulator, and how the emulator's address is read."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest


def test_emulator_address_comes_from_the_option_then_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from sortkd_cache.store._fsspec import _gcs_endpoint

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    assert _gcs_endpoint({}) is None
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "default")  # gcsfs: the real endpoint
    assert _gcs_endpoint({}) is None
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:4443")
    assert _gcs_endpoint({}) == "http://127.0.0.1:4443"
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "https://gcs.lab:8443")
    assert _gcs_endpoint({}) == "https://gcs.lab:8443"
    assert _gcs_endpoint({"endpoint_url": "http://127.0.0.1:9"}) == "http://127.0.0.1:9"


def test_real_gcs_keeps_gcsfs_default_filesystem(monkeypatch: pytest.MonkeyPatch) -> None:
    import gcsfs

    from sortkd_cache.store._backend import parse_location, remote_filesystem

    monkeypatch.delenv("STORAGE_EMULATOR_HOST", raising=False)
    fs, path = remote_filesystem(parse_location("gs://team-kd/c100.zarr"), {"token": "anon"})
    assert type(fs) is gcsfs.GCSFileSystem and path == "team-kd/c100.zarr"


def test_an_emulator_gets_the_json_api_filesystem_and_logs_nothing(
    gcs: Any, share_store: Path, caplog: pytest.LogCaptureFixture
) -> None:
    import gcsfs.core

    import sortkd_cache as sk
    from sortkd_cache.store import copy_store
    from sortkd_cache.store._backend import parse_location, remote_filesystem

    url = gcs.url("digits.zarr")
    fs, path = remote_filesystem(parse_location(url), {"token": "anon"})
    assert type(fs) is gcsfs.core.GCSFileSystem and path == f"{gcs.bucket}/digits.zarr"
    # gcsfs's default filesystem logs a warning on every call against an emulator (and with
    # token=anon retries for minutes): a copy and a read log nothing at all
    with caplog.at_level(logging.WARNING):
        copy_store(share_store, url, progress=False, storage_options={"token": "anon"})
        shared = sk.open_store(url, storage_options={"token": "anon"})
        np.testing.assert_array_equal(shared.labels, sk.open_store(share_store).labels)
    assert [r.getMessage() for r in caplog.records if r.name.startswith(("gcsfs", "google"))] == []
