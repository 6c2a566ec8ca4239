"""Locations and backends: parsing, environment and storage options, clear errors, caching."""

from __future__ import annotations

import importlib
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.errors import (
    RemoteStoreError,
    SchemaError,
    StoreNotFoundError,
    StoreReadOnlyError,
)
from sortkd_cache.store import open_store, parse_location
from sortkd_cache.store._backend import (
    open_backend,
    remote_error,
    run_sync,
    storage_options_for,
)
from sortkd_cache.store._keys import list_keys
from sortkd_cache.store._readcache import cache_bytes, read_cache_store

pytestmark = pytest.mark.fast


@pytest.mark.parametrize(
    ("raw", "kind", "scheme", "writable", "is_zip"),
    [
        ("runs/digits.zarr", "dir", "file", True, False),
        ("team/Digits.ZIP", "zip", "file", False, True),
        ("file:///data/x.zarr", "dir", "file", True, False),
        ("s3://bucket/prefix/x.zarr", "remote", "s3", True, False),
        ("s3://bucket/x.zip", "remote", "s3", False, True),
        ("gs://bucket/x.zarr", "remote", "gs", True, False),
        ("gcs://bucket/x.zarr", "remote", "gcs", True, False),
        ("https://example.org/stores/x.zarr/", "remote", "https", False, False),
        ("http://127.0.0.1:8000/x.zip", "remote", "http", False, True),
    ],
)
def test_parse_location(raw: str, kind: str, scheme: str, writable: bool, is_zip: bool) -> None:
    loc = parse_location(raw)
    assert (loc.kind, loc.scheme, loc.writable, loc.is_zip) == (kind, scheme, writable, is_zip)
    assert loc.raw == raw
    assert not loc.path.endswith("/")
    assert loc.is_local == (kind != "remote")


@pytest.mark.parametrize("raw", ["ftp://host/x.zarr", "hdfs://nn/x", "S3X://b/x"])
def test_unknown_scheme_names_it(raw: str) -> None:
    with pytest.raises(RemoteStoreError, match=f"unknown URL scheme '{raw.split(':')[0].lower()}'"):
        parse_location(raw)


@pytest.mark.parametrize("raw", ["", "s3://", "https:///"])
def test_empty_locations_are_refused(raw: str) -> None:
    with pytest.raises((StoreNotFoundError, RemoteStoreError)):
        parse_location(raw)


def test_s3_endpoint_from_environment_and_options(monkeypatch: pytest.MonkeyPatch) -> None:
    loc = parse_location("s3://b/x.zarr")
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9000")
    monkeypatch.setenv("SORTKD_REMOTE_TIMEOUT", "7")
    bounds = {"config_kwargs": {"connect_timeout": 7.0, "read_timeout": 7.0}}
    assert storage_options_for(loc, None) == {"endpoint_url": "http://127.0.0.1:9000", **bounds}
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9001")
    assert storage_options_for(loc, {"anon": True}) == {
        "anon": True,
        "endpoint_url": "http://127.0.0.1:9001",
        **bounds,
    }
    # explicit options win over the environment
    assert storage_options_for(loc, {"endpoint_url": "http://e"}) == {
        "endpoint_url": "http://e",
        **bounds,
    }
    given = {"client_kwargs": {"endpoint_url": "http://c"}}
    assert storage_options_for(loc, given) == {**given, **bounds}
    mine = {"config_kwargs": {"read_timeout": 120}}  # the user's own time limits win
    assert storage_options_for(loc, mine)["config_kwargs"] == {
        "connect_timeout": 7.0,
        "read_timeout": 120,
    }
    # other schemes are left alone
    assert storage_options_for(parse_location("https://h/x.zarr"), None) == {}


def test_gs_without_credentials_is_refused_before_any_network(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for var in ("GOOGLE_APPLICATION_CREDENTIALS", "STORAGE_EMULATOR_HOST"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path / "gcloud"))
    with pytest.raises(RemoteStoreError, match=r"no Google Cloud credentials for 'gs://b/x\.zarr'"):
        open_store("gs://b/x.zarr")
    with pytest.raises(RemoteStoreError, match="token=anon"):
        open_store("gcs://b/x.zarr")
    # an application-default credentials file is enough to pass the check
    (tmp_path / "gcloud").mkdir()
    (tmp_path / "gcloud" / "application_default_credentials.json").write_text("{}")
    assert storage_options_for(parse_location("gs://b/x.zarr"), None) == {}


def test_gs_without_gcsfs_names_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    loaded = importlib.import_module("fsspec.registry")._registry
    monkeypatch.setitem(sys.modules, "gcsfs", None)
    for proto in ("gs", "gcs"):  # forget a class imported earlier in this process
        monkeypatch.delitem(loaded, proto, raising=False)
    with pytest.raises(RemoteStoreError, match=r"gcsfs is not installed .*sortkd-cache\[gcs\]"):
        open_store("gs://b/x.zarr", storage_options={"token": "anon"})


def test_remote_error_classification() -> None:
    loc = parse_location("s3://b/x.zarr")

    class NoCredentialsError(Exception):
        pass

    class EndpointConnectionError(Exception):
        pass

    opts = {"endpoint_url": "http://127.0.0.1:1"}
    assert "no credentials" in str(remote_error(loc, NoCredentialsError("Unable")))
    msg = str(remote_error(loc, EndpointConnectionError("Could not connect"), opts))
    assert msg.startswith("cannot reach http://127.0.0.1:1 for 's3://b/x.zarr'")
    assert "denied" in str(remote_error(loc, PermissionError("Forbidden")))
    err = remote_error(loc, ImportError("no module", name="s3fs"))
    assert "s3fs is not installed" in str(err) and "[s3]" in str(err)
    assert isinstance(remote_error(loc, RuntimeError("odd\nsecond line")), RemoteStoreError)
    assert "\n" not in str(remote_error(loc, RuntimeError("odd\nsecond line")))


def test_local_paths_that_are_not_stores(tmp_path: Path) -> None:
    with pytest.raises(StoreNotFoundError, match="directory not found"):
        open_store(tmp_path / "missing.zarr")
    (tmp_path / "empty").mkdir()
    with pytest.raises(StoreNotFoundError, match=r"is not a store \(no zarr.json"):
        open_store(tmp_path / "empty")
    (tmp_path / "file.txt").write_text("x")
    with pytest.raises(StoreNotFoundError, match="is a file"):
        open_store(tmp_path / "file.txt")
    (tmp_path / "fake.zip").write_text("not a zip")
    with pytest.raises(StoreNotFoundError, match="is not a zip file"):
        open_store(tmp_path / "fake.zip")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(StoreNotFoundError, match="zip file but not a store"):
        open_store(tmp_path / "other.zip")
    with pytest.raises(StoreNotFoundError, match="file not found"):
        open_store(tmp_path / "missing.zip")
    (tmp_path / "group").mkdir()
    (tmp_path / "group" / "zarr.json").write_text(
        json.dumps({"zarr_format": 3, "node_type": "group", "attributes": {}})
    )
    with pytest.raises(SchemaError, match="not a sortkd-cache store"):
        open_store(tmp_path / "group")


def test_read_only_locations_refuse_writes(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "s.zip", "w") as zf:
        zf.writestr("zarr.json", "{}")
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        open_backend(parse_location(tmp_path / "s.zip"), "r+")
    for url in ("https://example.org/x.zarr", "http://127.0.0.1:1/x.zarr"):
        with pytest.raises(StoreReadOnlyError, match="read-only"):
            open_backend(parse_location(url), "r+")


def test_read_cache_is_an_lru_of_whole_values() -> None:
    from zarr.storage import MemoryStore

    from sortkd_cache.store._zarr_compat import default_buffer_prototype

    proto = default_buffer_prototype()
    inner = MemoryStore()
    for key in "abc":
        run_sync(inner.set(key, proto.buffer.from_bytes(key.encode() * 40)))
    cached: Any = read_cache_store(inner, max_bytes=100)
    reads: list[str] = []
    get = inner.get

    async def counting(key: str, *args: Any, **kw: Any) -> Any:
        reads.append(key)
        return await get(key, *args, **kw)

    inner.get = counting  # type: ignore[method-assign]
    for key in ("a", "b", "a", "b"):
        assert run_sync(cached.get(key, proto)).to_bytes() == key.encode() * 40
    assert reads == ["a", "b"]  # the second epoch is served from memory
    run_sync(cached.get("c", proto))  # 3 x 40 bytes > 100: the least recently used goes
    run_sync(cached.get("b", proto))
    run_sync(cached.get("a", proto))
    assert reads == ["a", "b", "c", "a"]
    assert run_sync(cached.get("missing", proto)) is None


def test_cache_size_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SORTKD_REMOTE_CACHE_MB", "0.5")
    assert cache_bytes() == 1 << 19
    monkeypatch.setenv("SORTKD_REMOTE_CACHE_MB", "lots")
    with pytest.raises(RemoteStoreError, match="SORTKD_REMOTE_CACHE_MB='lots'"):
        cache_bytes()


def test_list_keys_of_dir_and_zip(tmp_path: Path) -> None:
    root = tmp_path / "d"
    (root / "a" / "c").mkdir(parents=True)
    (root / "zarr.json").write_bytes(b"{}")
    (root / "a" / "c" / "0").write_bytes(b"12345")
    loc = parse_location(root)
    assert list_keys(None, loc) == {"a/c/0": 5, "zarr.json": 2}
    with zipfile.ZipFile(tmp_path / "d.zip", "w") as zf:
        zf.writestr("zarr.json", b"{}")
        zf.writestr("a/", b"")
        zf.writestr("a/c/0", b"12345")
    assert list_keys(None, parse_location(tmp_path / "d.zip")) == {"a/c/0": 5, "zarr.json": 2}
    assert list_keys(None, parse_location("https://h/x.zarr")) is None
