"""What object stores do beyond the backend contract (test_backend_contract.py): every test
runs on s3:// (moto) and gs:// (fake-gcs-server): a zip at a URL, sort --out to a bucket,
the read cache, the root key published last, a killed copy, buckets that do not exist,
credentials, endpoints, and outputs that never destroy what is not theirs.

Both servers run on 127.0.0.1 (see conftest.py); each test gets a fresh bucket. What is
specific to one backend (how credentials or an endpoint are given) lives in the ``Remote``
fixture, not in the tests.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.errors import RemoteStoreError, StoreExistsError, StoreNotFoundError
from sortkd_cache.testing import one_error_line, run_cli

REPO = Path(__file__).resolve().parents[3]

# A copy that stops for good after HALF keys reached the server (then the test kills it).
STALLED_COPY = textwrap.dedent(
    """
    import asyncio, sys
    from zarr.storage import FsspecStore
    from sortkd_cache.store import copy_store

    put = FsspecStore.set
    done = 0

    async def stalling_set(self, key, value, byte_range=None):
        global done
        if done >= int(sys.argv[3]):
            print("stalled", flush=True)
            await asyncio.sleep(3600)
        await put(self, key, value, byte_range)
        done += 1

    FsspecStore.set = stalling_set
    copy_store(sys.argv[1], sys.argv[2], progress=False)
    """
)


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# -- round trips ------------------------------------------------------------------------------
def test_zip_on_remote_and_overwrite(share_store: Path, remote: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = remote.url("digits.zip")
    result = copy_store(share_store, url, progress=False)
    assert result.verify.sound
    np.testing.assert_array_equal(
        sk.open_store(url).logits("raw")[:], sk.open_store(share_store).logits("raw")[:]
    )
    with pytest.raises(StoreExistsError, match="--overwrite"):
        copy_store(share_store, url, progress=False)
    dir_url = remote.url("d.zarr")
    copy_store(share_store, dir_url, progress=False)
    with pytest.raises(StoreExistsError, match="already holds a store"):
        copy_store(share_store, dir_url, progress=False)
    assert copy_store(url, dir_url, overwrite=True, progress=False).verify.sound


@pytest.mark.slow
def test_sort_out_to_remote(share_store: Path, remote: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import verify_store

    url = remote.url("swapped.zarr")
    proc = run_cli("sort", str(share_store), "--method", "swap", "--out", url, env=remote.env())
    assert proc.returncode == 0, proc.stderr
    out, src = sk.open_store(url), sk.open_store(share_store)
    assert "swap" in out.kinds()
    raw = src.logits("raw")[:]
    labels = np.repeat(src.labels[:, None], src.num_views, axis=1)
    np.testing.assert_array_equal(out.logits("swap")[:], sk.swap_logits(raw, labels))
    np.testing.assert_array_equal(out.labels, src.labels)
    assert verify_store(url).sound


def test_a_second_epoch_is_served_from_the_read_cache(share_store: Path, remote: Any) -> None:
    """Reading (every backend alike) is the contract suite's; a remote store opened read-only
    also keeps the chunks it read, so a second epoch over a view asks the server nothing."""
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = remote.url("digits.zarr")
    copy_store(share_store, url, progress=False)
    shared = sk.open_store(url)
    first = shared.logits("sort")[:, 1]
    backend = shared.raw_array("logits/sort").store
    calls: list[str] = []
    inner_get = backend._store.get

    async def counting_get(key: str, *args: Any, **kw: Any) -> Any:
        calls.append(key)
        return await inner_get(key, *args, **kw)

    backend._store.get = counting_get
    np.testing.assert_array_equal(shared.logits("sort")[:, 1], first)
    assert calls == []
    shared.logits("sort")[:, 0]
    assert calls  # view 0 of 'sort' was not read before


# -- publishing -------------------------------------------------------------------------------
def test_root_metadata_is_written_last(
    share_store: Path, remote: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from zarr.storage import FsspecStore

    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = remote.url("digits.zarr")
    written: list[str] = []
    put = FsspecStore.set

    async def recording_set(self: Any, key: str, value: Any, byte_range: Any = None) -> None:
        await put(self, key, value, byte_range)
        written.append(key)

    monkeypatch.setattr(FsspecStore, "set", recording_set)
    copy_store(share_store, url, progress=False)
    assert written.count("zarr.json") == 1 and written[-1] == "zarr.json"
    assert sorted(written) == sorted(_files(share_store))
    assert sk.open_store(url).num_samples == sk.open_store(share_store).num_samples


@pytest.mark.slow
def test_killed_copy_leaves_no_store_and_a_rerun_completes_it(
    share_store: Path,
    remote: Any,
    tmp_path: Path,
) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store, verify_store

    url = remote.url("digits.zarr")
    half = len(_files(share_store)) // 2
    env = {**remote.env(), "PYTHONPATH": str(REPO), "SORTKD_NO_PROGRESS": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-c", STALLED_COPY, str(share_store), url, str(half)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout is not None and proc.stdout.readline().strip() == "stalled"
        with pytest.raises(StoreNotFoundError):  # mid-copy: keys there, no store
            sk.open_store(url)
    finally:
        proc.kill()
        proc.communicate(timeout=60)
    with pytest.raises(StoreNotFoundError, match=r"no zarr\.json"):
        sk.open_store(url)
    refused = run_cli("copy", str(share_store), url, env=remote.env())
    one_error_line(refused, "interrupted copy", "--overwrite")
    assert copy_store(share_store, url, overwrite=True, progress=False).verify.sound
    assert verify_store(url).sound
    assert copy_store(url, tmp_path / "back.zarr", progress=False).verify.sound
    assert _files(tmp_path / "back.zarr") == _files(share_store)


# -- errors: exit 2 and one line --------------------------------------------------------------
@pytest.mark.slow  # console-script runs
def test_not_a_store_and_unknown_bucket(share_store: Path, remote: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    with pytest.raises(StoreNotFoundError, match="no store at"):
        sk.open_store(remote.url("nothing.zarr"))
    one_error_line(run_cli("info", remote.url("nothing.zarr"), env=remote.env()), "no zarr.json")
    missing = f"{remote.scheme}://no-such-bucket-here/x.zarr"
    proc = run_cli("info", missing, env=remote.env())
    one_error_line(proc, missing, "bucket 'no-such-bucket-here'", "does not exist")
    proc = run_cli("copy", str(share_store), missing, env=remote.env())
    one_error_line(proc, missing, "bucket 'no-such-bucket-here'", "does not exist")
    with pytest.raises(RemoteStoreError, match="does not exist"):
        copy_store(share_store, missing, progress=False)


@pytest.mark.slow  # console-script runs
def test_missing_credentials_is_one_clear_line(
    share_store: Path, remote: Any, tmp_path: Path
) -> None:
    from sortkd_cache.store import copy_store

    url = remote.url("x.zarr")
    copy_store(share_store, url, progress=False, storage_options=remote.public_options())
    env, reach = remote.no_credentials(tmp_path)
    one_error_line(run_cli("copy", str(share_store), url, *reach, env=env), *remote.credential_vars)
    one_error_line(run_cli("info", url, *reach, env=env), *remote.credential_vars)
    proc = run_cli("info", url, *reach, "--storage-option", remote.anon, "--json", env=env)
    assert proc.returncode == 0, proc.stderr  # the anonymous option is the way out it names
    assert json.loads(proc.stdout)["store"] == url


def test_unreachable_endpoint_is_one_clear_line(remote: Any, closed_port: int) -> None:
    dead = f"http://127.0.0.1:{closed_port}"
    proc = run_cli("info", remote.url("digits.zarr"), *remote.dead_endpoint_args(dead))
    one_error_line(proc, "cannot reach", dead)


def test_storage_option_endpoint_wins_over_environment(share_store: Path, remote: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = remote.url("digits.zarr")
    copy_store(share_store, url, progress=False)
    store = sk.open_store(url, storage_options={"endpoint_url": remote.endpoint})
    assert store.num_samples == sk.open_store(share_store).num_samples
    dead = {"endpoint_url": "http://127.0.0.1:9"}
    if remote.scheme == "s3":
        dead["config_kwargs"] = {"retries": {"max_attempts": 1}}  # type: ignore[assignment]
    with pytest.raises(RemoteStoreError, match="cannot reach"):
        sk.open_store(url, storage_options=dead)


def _remote_objects(url: str) -> dict[str, bytes]:
    """Every object under the prefix ``url`` names, by key (read straight from the server)."""
    from sortkd_cache.store._backend import parse_location, remote_filesystem

    fs, path = remote_filesystem(parse_location(url), {})
    return {key: fs.cat_file(key) for key in sorted(fs.find(path))}


def test_remote_outputs_never_destroy_what_is_not_theirs(share_store: Path, remote: Any) -> None:
    """The output guards of tests/hostile on an object store: --overwrite onto a prefix that
    holds other objects, a copy into its own source, sort --out onto its store."""
    from sortkd_cache.errors import OutputError
    from sortkd_cache.pipelines.sort import SortConfig, sort_store
    from sortkd_cache.store import copy_store
    from sortkd_cache.store._backend import parse_location, remote_filesystem

    thesis = remote.url("thesis")
    fs, path = remote_filesystem(parse_location(thesis), {})
    fs.pipe_file(f"{path}/paper.tex", b"precious")
    fs.pipe_file(f"{path}/zarr.json", b'{"not": "a store"}')
    mine = _remote_objects(thesis)
    with pytest.raises(OutputError, match="is not a sortkd-cache store"):
        copy_store(share_store, thesis, overwrite=True, progress=False)
    assert _remote_objects(thesis) == mine
    url = remote.url("digits.zarr")
    copy_store(share_store, url, progress=False)
    source = _remote_objects(url)
    for dst in (url, url + "/inner.zarr"):
        with pytest.raises(OutputError, match="the source"):
            copy_store(url, dst, overwrite=True, progress=False)
    with pytest.raises(OutputError, match="is the STORE"):
        sort_store(SortConfig(store=url, out=url, overwrite=True, progress=False))
    assert _remote_objects(url) == source
