"""S3 against a real moto server (server mode) on 127.0.0.1: copy, info, verify, train."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sortkd_cache.errors import RemoteStoreError, StoreExistsError, StoreNotFoundError


@pytest.mark.slow
def test_copy_info_verify_train_from_s3_match_local(
    share_store: Path, s3: Any, run_cli: Any, tmp_path: Path
) -> None:
    from sortkd_cache.pipelines.info import store_info
    from sortkd_cache.pipelines.train import TrainConfig, train
    from sortkd_cache.store import verify_store

    url = s3.url("team/digits.zarr")
    proc = run_cli("copy", str(share_store), url, "--json", env=s3.env())
    assert proc.returncode == 0, proc.stderr
    copied = json.loads(proc.stdout)
    assert copied["verify"]["sound"] and copied["dst"] == url and copied["keys"] > 20

    local_info, remote_info = store_info(str(share_store)), store_info(url)
    assert remote_info.pop("store") == url
    local_info.pop("store")
    assert remote_info == local_info

    local_report, remote_report = verify_store(share_store), verify_store(url)
    assert local_report.sound and remote_report.sound, remote_report.problems
    for key in ("chunks_checked", "bytes_read", "arrays", "skipped"):
        assert getattr(local_report, key) == getattr(remote_report, key), key

    results = [
        train(
            TrainConfig(
                cache=cache,
                student="digits_cnn_s",
                logits="sort",
                loss="kd",
                epochs=1,
                milestones=(),
                batch_size=256,
                out=str(tmp_path / f"run{i}"),
                progress=False,
                device="cpu",
            )
        )
        for i, cache in enumerate((str(share_store), url))
    ]
    assert results[0].step_losses and results[0].step_losses == results[1].step_losses
    assert results[0].final_test_top1 == results[1].final_test_top1


def test_open_store_reads_same_arrays_and_caches_chunks(share_store: Path, s3: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = s3.url("digits.zarr")
    copy_store(share_store, url, progress=False)
    local, remote = sk.open_store(share_store), sk.open_store(url)
    assert (remote.num_samples, remote.num_views, remote.num_classes) == (
        local.num_samples,
        local.num_views,
        local.num_classes,
    )
    np.testing.assert_array_equal(remote.labels, local.labels)
    first = remote.logits("sort")[:, 1]
    np.testing.assert_array_equal(first, local.logits("sort")[:, 1])

    # a second epoch over the same view is served from the in-process cache: the remote
    # store is not asked again
    backend = remote.raw_array("logits/sort").store
    calls: list[str] = []
    inner_get = backend._store.get

    async def counting_get(key: str, *args: Any, **kw: Any) -> Any:
        calls.append(key)
        return await inner_get(key, *args, **kw)

    backend._store.get = counting_get
    np.testing.assert_array_equal(remote.logits("sort")[:, 1], first)
    assert calls == []
    remote.logits("sort")[:, 0]
    assert calls  # view 0 of 'sort' was not read before


def test_zip_on_s3_and_overwrite(share_store: Path, s3: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = s3.url("digits.zip")
    result = copy_store(share_store, url, progress=False)
    assert result.verify.sound
    np.testing.assert_array_equal(
        sk.open_store(url).logits("raw")[:], sk.open_store(share_store).logits("raw")[:]
    )
    with pytest.raises(StoreExistsError, match="--overwrite"):
        copy_store(share_store, url, progress=False)
    dir_url = s3.url("d.zarr")
    copy_store(share_store, dir_url, progress=False)
    with pytest.raises(StoreExistsError, match="already holds a store"):
        copy_store(share_store, dir_url, progress=False)
    assert copy_store(url, dir_url, overwrite=True, progress=False).verify.sound


def test_s3_not_a_store_and_missing_bucket(
    share_store: Path, s3: Any, run_cli: Any, one_line_error: Any
) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    with pytest.raises(StoreNotFoundError, match="no store at"):
        sk.open_store(s3.url("nothing.zarr"))
    proc = run_cli("info", "s3://no-such-bucket-here/x.zarr", env=s3.env())
    one_line_error(proc, "s3://no-such-bucket-here/x.zarr")
    with pytest.raises(RemoteStoreError, match="not found"):
        copy_store(share_store, "s3://no-such-bucket-here/x.zarr", progress=False)


def test_missing_credentials_is_one_clear_line(
    share_store: Path, s3: Any, run_cli: Any, one_line_error: Any, tmp_path: Path
) -> None:
    env = {
        k: v
        for k, v in s3.env().items()
        if not k.startswith(("AWS_ACCESS", "AWS_SECRET", "AWS_SESSION", "AWS_PROFILE"))
    }
    env["AWS_SHARED_CREDENTIALS_FILE"] = str(tmp_path / "none")
    env["AWS_CONFIG_FILE"] = str(tmp_path / "none")
    proc = run_cli("copy", str(share_store), s3.url("x.zarr"), env=env)
    one_line_error(proc, "no credentials", "AWS_ACCESS_KEY_ID", "anon=true")


def test_unreachable_endpoint_is_one_clear_line(
    s3: Any, run_cli: Any, one_line_error: Any, closed_port: int
) -> None:
    dead = f"http://127.0.0.1:{closed_port}"
    proc = run_cli(
        "info",
        s3.url("digits.zarr"),
        "--storage-option",
        f"endpoint_url={dead}",
        "--storage-option",
        'config_kwargs={"retries": {"max_attempts": 1}}',
        env=s3.env(),
    )
    one_line_error(proc, "cannot reach", dead)


def test_storage_option_endpoint_wins_over_environment(share_store: Path, s3: Any) -> None:
    import sortkd_cache as sk
    from sortkd_cache.store import copy_store

    url = s3.url("digits.zarr")
    copy_store(share_store, url, progress=False)
    store = sk.open_store(url, storage_options={"endpoint_url": s3.endpoint})
    assert store.num_samples == sk.open_store(share_store).num_samples
    with pytest.raises(RemoteStoreError, match="cannot reach"):
        sk.open_store(
            url,
            storage_options={
                "endpoint_url": "http://127.0.0.1:9",
                "config_kwargs": {"retries": {"max_attempts": 1}},
            },
        )
