"""http(s):// specifics beyond the backend contract (test_backend_contract.py), against a
real http.server on 127.0.0.1: a zip read by range requests (or whole, from a server without
them), writes refused, bad URLs in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.errors import RemoteStoreError, StoreNotFoundError, StoreReadOnlyError
from sortkd_cache.testing import one_error_line, run_cli


def test_a_zip_is_read_by_range_requests(share_store: Path, http_url: str) -> None:
    """A directory over http(s) is the backend contract's; a zip there is read member by
    member with range requests, and verifies like the directory."""
    import sortkd_cache as sk
    from sortkd_cache.store import verify_store

    url = f"{http_url}/digits.zip"
    local, remote = sk.open_store(share_store), sk.open_store(url)
    assert remote.url == url and remote.meta == local.meta
    np.testing.assert_array_equal(remote.logits("sort")[5:700, 1], local.logits("sort")[5:700, 1])
    report = verify_store(url)
    assert report.sound and report.chunks_checked == verify_store(share_store).chunks_checked


def test_writes_are_refused(http_url: str, share_store: Path) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import create_store

    url = f"{http_url}/digits.zarr"
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        sk.open_store(url, mode="r+")
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        sk.open_store(f"{http_url}/digits.zip", mode="r+")
    store = sk.open_store(url)
    with pytest.raises(StoreReadOnlyError):
        store.write_meta(store.meta)
    with pytest.raises(StoreReadOnlyError, match="read-only"):
        create_store(f"{http_url}/new.zarr", store.meta, store.labels)
    proc = run_cli("copy", str(share_store), f"{http_url}/copy.zarr")
    one_error_line(proc, "read-only", f"{http_url}/copy.zarr")


def test_bad_locations_fail_in_one_line(http_url: str, closed_port: int, tmp_path: Path) -> None:
    proc = run_cli("info", f"{http_url}/nothing.zarr")
    one_error_line(proc, "no store at", "nothing.zarr")
    proc = run_cli("verify", f"http://127.0.0.1:{closed_port}/digits.zarr")
    one_error_line(proc, "cannot reach", f"127.0.0.1:{closed_port}")
    proc = run_cli("verify", "ftp://127.0.0.1/digits.zarr")
    one_error_line(proc, "unknown URL scheme 'ftp'")
    (tmp_path / "notes").mkdir()
    proc = run_cli("copy", str(tmp_path / "notes"), str(tmp_path / "out.zip"))
    one_error_line(proc, "is not a store", "notes")


def test_remote_zip_without_range_support(
    plain_http_url: str, http_root: Path, share_store: Path
) -> None:
    import zipfile

    import sortkd_cache as sk

    # a small zip is fetched whole in one request, so even a server without range
    # requests (python -m http.server) serves it
    assert sk.open_store(f"{plain_http_url}/digits.zip").meta == sk.open_store(share_store).meta
    # a large one needs ranges: refused in one clear line
    big = http_root / "big.zip"
    with zipfile.ZipFile(big, "w") as zf:
        zf.writestr("zarr.json", b"{}")
        zf.writestr("blob", np.random.default_rng(0).bytes(3 << 20))
    try:
        with pytest.raises(RemoteStoreError, match="range requests"):
            sk.open_store(f"{plain_http_url}/big.zip")
    finally:
        big.unlink()


def test_a_missing_zip_over_http(http_url: str) -> None:
    import sortkd_cache as sk

    with pytest.raises(StoreNotFoundError):
        sk.open_store(f"{http_url}/missing.zip")
    with pytest.raises(StoreNotFoundError, match="no store at"):
        sk.open_store(f"{http_url}/")


def test_unknown_scheme_is_refused() -> None:
    import sortkd_cache as sk

    with pytest.raises(RemoteStoreError, match="unknown URL scheme 'ftp'"):
        sk.open_store("ftp://127.0.0.1/digits.zarr")
