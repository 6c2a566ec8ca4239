"""The backend contract: one test class that every place a store can live runs, as zarr runs
its ``StoreTests`` over every store: a directory, a ``.zip``, ``s3://`` (moto), ``gs://``
(fake-gcs-server), ``https://`` (a local ``http.server`` with range requests; read-only),
``memory://`` (fsspec's in-process filesystem) and ``file+test://``, a URL scheme that a package
outside sortkd-cache registers through the ``sortkd_cache.backends`` entry point group (here a
distribution written by the test, whose scheme opens zarr's own ``LocalStore``, not fsspec).

Every server listens on 127.0.0.1 only (see conftest.py); each test gets a fresh bucket or
folder. What a backend can do differs in two answers only: whether it can be written (https
cannot) and whether it lists its keys (https cannot; keys then come from the metadata). What
is specific to one backend (credentials, endpoints, a bucket that does not exist, a server
without range requests) stays in test_object_stores.py, test_gcs.py and test_http.py.
"""

from __future__ import annotations

import json
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.errors import StoreExistsError, StoreNotFoundError, StoreReadOnlyError
from sortkd_cache.testing import invoke, topk_store

from ...plugins.conftest import write_distribution

BACKENDS = ["dir", "zip", "s3", "gs", "https", "memory", "plugin"]
LOCK = ".sortkd-lock"


@dataclass(frozen=True)
class Backend:
    """Where stores live on one backend, and what it can do."""

    name: str
    url: Callable[[str], str]  # where a store called NAME lives (or would live)
    publish: Callable[[Path, str], str]  # put a local store there as NAME; returns its URL
    writable: bool  # can be a copy's destination
    lists: bool  # can list its keys (else keys come from the metadata)


def _files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in root.rglob("*")
        if p.is_file() and not p.name.startswith(LOCK)
    }


def _copy_to(url: Callable[[str], str]) -> Callable[[Path, str], str]:
    def publish(store: Path, name: str) -> str:
        from sortkd_cache.store import copy_store

        return copy_store(store, url(name), progress=False).dst

    return publish


def _https(root: Path, base: str) -> Backend:
    folder = f"b{uuid.uuid4().hex[:8]}"

    def publish(store: Path, name: str) -> str:  # what the web server's owner does
        shutil.copytree(store, root / folder / name, ignore=shutil.ignore_patterns(f"{LOCK}*"))
        return f"{base}/{folder}/{name}"

    return Backend("https", lambda n: f"{base}/{folder}/{n}", publish, False, False)


#: A URL scheme as another package would register it: a module and its entry point.
PLUGIN_SCHEME = """
from zarr.storage import LocalStore

from sortkd_cache.store import Scheme


def _open(loc, mode, storage_options):
    return LocalStore(loc.path.split("://", 1)[1], read_only=mode == "r")


SCHEME = Scheme("file+test", open=_open)
"""


def _plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Backend:
    """``file+test://`` registered from outside the package (an entry point), for the test."""
    from sortkd_cache.store import SCHEMES

    site = tmp_path / "site"
    groups = {"sortkd_cache.backends": {"file+test": "sortkd_test_scheme:SCHEME"}}
    write_distribution(site, "sortkd-test-scheme", "1.0", groups)
    (site / "sortkd_test_scheme.py").write_text(PLUGIN_SCHEME)
    saved = SCHEMES.snapshot()
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.setattr(SCHEMES, "_entries", dict(saved))  # put back when the test ends
    assert "file+test" in SCHEMES.names() and SCHEMES.origin("file+test") == "sortkd-test-scheme"

    def url(n: str) -> str:
        return f"file+test://{tmp_path / 'place' / n}"

    return Backend("plugin", url, _copy_to(url), True, True)


def _memory(tmp_path: Path) -> Backend:
    folder = f"/b{uuid.uuid4().hex[:8]}"

    def url(n: str) -> str:
        return f"memory://{folder}/{n}"

    return Backend("memory", url, _copy_to(url), True, True)


@pytest.fixture(params=BACKENDS)
def backend(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Backend:
    name = request.param
    if name == "plugin":
        return _plugin(tmp_path, monkeypatch)
    if name == "memory":
        return _memory(tmp_path)
    if name == "https":
        root, base = request.getfixturevalue("http_root"), request.getfixturevalue("http_url")
        return _https(root, base)
    if name in ("dir", "zip"):
        suffix = ".zip" if name == "zip" else ""

        def url(n: str) -> str:
            return str(tmp_path / "place" / f"{n}{suffix}")

        return Backend(name, url, _copy_to(url), True, True)
    remote = request.getfixturevalue({"s3": "s3", "gs": "gcs"}[name])
    return Backend(name, remote.url, _copy_to(remote.url), True, True)


def _train(cache: str, out: Path, student: str = "digits_cnn_s") -> list[float]:
    from sortkd_cache.pipelines.train import TrainConfig, train

    cfg = TrainConfig(
        cache=cache, student=student, logits="sort", loss="kd", epochs=1, milestones=(),
        batch_size=256, out=str(out), progress=False, device="cpu",
    )  # fmt: skip
    result = train(cfg)
    assert result.finished
    return list(result.step_losses)


@pytest.fixture(scope="module")
def local_losses(share_store: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    """One KD epoch from the local store: what a run from every backend must reproduce."""
    return _train(str(share_store), tmp_path_factory.mktemp("local-run") / "run")


@pytest.fixture(scope="module")
def sparse_store(share_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The share store as top-3 sparse rows (``copy --topk 3``), raw + sort."""
    return topk_store(share_store, tmp_path_factory.mktemp("sparse") / "top3.zarr", 3)


@pytest.fixture(scope="module")
def sparse_losses(sparse_store: Path, tmp_path_factory: pytest.TempPathFactory) -> list[float]:
    return _train(str(sparse_store), tmp_path_factory.mktemp("sparse-run") / "run", "digits_mlp")


class TestBackendContract:
    """What every backend does alike (the share store is digits: 2 views, raw + sort)."""

    def test_reads_what_the_local_store_holds(self, backend: Backend, share_store: Path) -> None:
        import sortkd_cache as sk

        url = backend.publish(share_store, "digits.zarr")
        local, there = sk.open_store(share_store), sk.open_store(url)
        assert there.url == url and there.meta == local.meta
        assert there.kinds() == local.kinds() == ["raw", "sort"]
        np.testing.assert_array_equal(there.labels, local.labels)
        np.testing.assert_array_equal(there.params(1), local.params(1))
        np.testing.assert_array_equal(there.logits("raw")[5:700, 0], local.logits("raw")[5:700, 0])
        np.testing.assert_array_equal(
            sk.read_view_logits(there, "sort", 1), sk.read_view_logits(local, "sort", 1)
        )

    def test_info_and_verify_match_the_local_store(
        self, backend: Backend, share_store: Path
    ) -> None:

        from sortkd_cache.pipelines.info import store_info
        from sortkd_cache.store import verify_store

        url = backend.publish(share_store, "digits.zarr")
        info, expected = store_info(url), store_info(str(share_store))
        assert info.pop("store") == url
        expected.pop("store")
        assert info == expected
        local = verify_store(share_store)
        result = invoke("verify", url, "--dataset", "digits", "--json")
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["sound"] and report["fingerprint_checked"] and report["location"] == url
        assert report["chunks_checked"] == local.chunks_checked
        assert sorted(report["arrays"]) == sorted(local.arrays)
        unlisted = [s for s in report["skipped"] if "cannot list keys" in s]
        assert bool(unlisted) == (not backend.lists)

    def test_lists_its_keys_or_says_it_cannot(self, backend: Backend, share_store: Path) -> None:
        import sortkd_cache as sk
        from sortkd_cache.store._keys import list_keys

        url = backend.publish(share_store, "digits.zarr")
        store = sk.open_store(url)
        keys = list_keys(store.raw_array("labels").store, store.location)
        if not backend.lists:
            assert keys is None
            return
        files = _files(share_store)
        assert keys == {k: len(v) for k, v in sorted(files.items())}

    def test_a_copy_back_is_byte_identical(
        self, backend: Backend, share_store: Path, tmp_path: Path
    ) -> None:
        from sortkd_cache.store import copy_store

        url = backend.publish(share_store, "digits.zarr")
        result = copy_store(url, tmp_path / "back.zarr", progress=False)
        assert result.verify.sound and result.src == url
        assert result.keys == len(_files(share_store))
        assert _files(tmp_path / "back.zarr") == _files(share_store)

    def test_writes_go_only_where_the_backend_allows(
        self, backend: Backend, share_store: Path
    ) -> None:
        import sortkd_cache as sk
        from sortkd_cache.store import copy_store

        url = backend.url("copy.zarr")
        if not backend.writable:
            with pytest.raises(StoreReadOnlyError, match="read-only"):
                copy_store(share_store, url, progress=False)
            with pytest.raises(StoreReadOnlyError, match="read-only"):
                sk.open_store(backend.publish(share_store, "d.zarr"), mode="r+")
            return
        assert copy_store(share_store, url, progress=False).verify.sound
        with pytest.raises(StoreExistsError, match="--overwrite"):
            copy_store(share_store, url, progress=False)
        assert copy_store(share_store, url, overwrite=True, progress=False).verify.sound
        assert sk.open_store(url).num_samples == sk.open_store(share_store).num_samples

    def test_no_store_is_one_clear_error(self, backend: Backend, share_store: Path) -> None:
        import sortkd_cache as sk

        backend.publish(share_store, "digits.zarr")  # the place exists, the name does not
        with pytest.raises(StoreNotFoundError, match="nothing"):
            sk.open_store(backend.url("nothing.zarr"))

    def test_training_from_it_matches_the_local_store(
        self, backend: Backend, share_store: Path, local_losses: list[float], tmp_path: Path
    ) -> None:
        url = backend.publish(share_store, "digits.zarr")
        assert local_losses and _train(url, tmp_path / "run") == local_losses

    def test_a_sparse_store_reads_verifies_and_trains_alike(
        self,
        backend: Backend,
        sparse_store: Path,
        sparse_losses: list[float],
        tmp_path: Path,
    ) -> None:
        import sortkd_cache as sk
        from sortkd_cache.store import verify_store

        url = backend.publish(sparse_store, "top3.zarr")
        assert verify_store(url).sound
        local, there = sk.open_store(sparse_store), sk.open_store(url)
        for kind in ("raw", "sort"):
            a, b = local.sparse_logits(kind)[:, 1], there.sparse_logits(kind)[:, 1]
            assert np.array_equal(a.ids, b.ids) and np.array_equal(a.values, b.values)
            assert np.array_equal(a.stats, b.stats, equal_nan=True)
        assert _train(url, tmp_path / "run", "digits_mlp") == sparse_losses
