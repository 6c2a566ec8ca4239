"""http(s):// stores against a real http.server on 127.0.0.1: read-only access works, a
write is refused, a zip is read by range requests, bad URLs fail in one line."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.errors import RemoteStoreError, StoreNotFoundError, StoreReadOnlyError


@pytest.mark.parametrize("name", ["digits.zarr", "digits.zip"])
def test_read_only_access_matches_local(share_store: Path, http_url: str, name: str) -> None:
    import sortkd_cache as sk
    from sortkd_cache.data import read_view_logits
    from sortkd_cache.pipelines.info import store_info

    url = f"{http_url}/{name}"
    local, remote = sk.open_store(share_store), sk.open_store(url)
    assert remote.url == url
    assert remote.meta == local.meta
    assert remote.kinds() == local.kinds() == ["raw", "sort"]
    np.testing.assert_array_equal(remote.labels, local.labels)
    np.testing.assert_array_equal(remote.params(1), local.params(1))
    np.testing.assert_array_equal(remote.logits("raw")[5:700, 0], local.logits("raw")[5:700, 0])
    np.testing.assert_array_equal(
        read_view_logits(remote, "sort", 1), read_view_logits(local, "sort", 1)
    )
    info = store_info(url)
    assert info.pop("store") == url
    expected = store_info(str(share_store))
    expected.pop("store")
    assert info == expected


def test_verify_and_copy_over_http(share_store: Path, http_url: str, tmp_path: Path) -> None:
    from sortkd_cache.store import copy_store, verify_store

    report = verify_store(f"{http_url}/digits.zarr")
    assert report.sound, report.problems
    assert report.chunks_checked == verify_store(share_store).chunks_checked
    assert any("http" in s for s in report.skipped)  # no key listing over http
    assert verify_store(f"{http_url}/digits.zip").sound

    # keys derived from the metadata (http cannot list): the download is byte-identical
    result = copy_store(f"{http_url}/digits.zarr", tmp_path / "down.zarr", progress=False)
    assert result.verify.sound
    for path in share_store.rglob("*"):
        if path.is_file() and not path.name.startswith(".sortkd-lock"):
            twin = tmp_path / "down.zarr" / path.relative_to(share_store)
            assert twin.read_bytes() == path.read_bytes(), path


def test_writes_are_refused(
    http_url: str, share_store: Path, run_cli: Any, one_line_error: Any
) -> None:
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
    one_line_error(proc, "read-only", f"{http_url}/copy.zarr")


def test_bad_locations_fail_in_one_line(
    http_url: str, run_cli: Any, one_line_error: Any, closed_port: int, tmp_path: Path
) -> None:
    proc = run_cli("info", f"{http_url}/nothing.zarr")
    one_line_error(proc, "no store at", "nothing.zarr")
    proc = run_cli("verify", f"http://127.0.0.1:{closed_port}/digits.zarr")
    one_line_error(proc, "cannot reach", f"127.0.0.1:{closed_port}")
    proc = run_cli("verify", "ftp://127.0.0.1/digits.zarr")
    one_line_error(proc, "unknown URL scheme 'ftp'")
    (tmp_path / "notes").mkdir()
    proc = run_cli("copy", str(tmp_path / "notes"), str(tmp_path / "out.zip"))
    one_line_error(proc, "is not a store", "notes")


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


def test_not_a_store_over_http(http_url: str) -> None:
    import sortkd_cache as sk

    with pytest.raises(StoreNotFoundError, match="no store at"):
        sk.open_store(f"{http_url}/")
    with pytest.raises(StoreNotFoundError):
        sk.open_store(f"{http_url}/missing.zip")


def test_cli_verify_json_over_http(http_url: str, run_cli: Any) -> None:
    proc = run_cli("verify", f"{http_url}/digits.zip", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["sound"] is True and report["problems"] == []
    assert report["location"] == f"{http_url}/digits.zip"


def test_unknown_scheme_is_refused() -> None:
    import sortkd_cache as sk

    with pytest.raises(RemoteStoreError, match="unknown URL scheme 'ftp'"):
        sk.open_store("ftp://127.0.0.1/digits.zarr")
