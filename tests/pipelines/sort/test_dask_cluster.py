"""`sort` on a dask.distributed cluster (two worker processes) equals the local threaded sort,
through the CLI (``--scheduler``) and through ``sort_store``."""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A LocalCluster of two single-threaded worker processes on 127.0.0.1; its address."""
    from distributed import LocalCluster

    with LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address="127.0.0.1:0",  # a free port: parallel test runs must not clash
    ) as lc:
        yield str(lc.scheduler_address)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A raw store and its copies sorted by local threads: 'raw', 'sort', 'sort+swap'."""
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    root = tmp_path_factory.mktemp("dask")
    out = {"raw": root / "raw.zarr", "sort": root / "sort.zarr", "sort+swap": root / "both.zarr"}
    dump(
        DumpConfig(
            dataset="fake:512:10:16",
            teacher="resnet8",
            teacher_init="random",
            views=2,
            chunk_samples=64,
            out=str(out["raw"]),
            device="cpu",
            progress=False,
        )
    )
    shutil.copytree(out["raw"], out["sort"])
    sort_store(SortConfig(store=str(out["sort"]), progress=False, num_workers=2))
    shutil.copytree(out["sort"], out["sort+swap"])
    sort_store(SortConfig(store=str(out["sort+swap"]), method="swap", progress=False))
    return out


def test_cli_sort_on_cluster_equals_threaded(
    tmp_path: Path,
    cluster: str,
    stores: dict[str, Path],
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
    stores_equal: Callable[[Path, Path], None],
) -> None:
    store = tmp_path / "c.zarr"
    shutil.copytree(stores["raw"], store)
    proc = subprocess.run(
        cli_cmd("sort", str(store), "--scheduler", cluster, "--json"),
        env=scale_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert (result["chunks_written"], result["chunks_total"]) == (16, 16)
    stores_equal(stores["sort"], store)


def test_api_sort_on_cluster_equals_threaded(
    tmp_path: Path,
    cluster: str,
    stores: dict[str, Path],
    stores_equal: Callable[[Path, Path], None],
) -> None:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store
    from sortkd_cache.store import open_store

    store = tmp_path / "api.zarr"
    shutil.copytree(stores["raw"], store)
    for method in ("sort", "swap"):
        result = sort_store(
            SortConfig(store=str(store), method=method, scheduler=cluster, progress=False)
        )
        assert result.stats == open_store(stores["sort+swap"]).kind_attrs(method)["stats"]
        assert (result.chunks_written, result.chunks_total) == (16, 16)
    stores_equal(stores["sort+swap"], store)
    # an up-to-date method is skipped
    assert sort_store(SortConfig(store=str(store), scheduler=cluster, progress=False)).skipped


def test_cluster_sorts_a_store_replaced_at_the_same_path(
    tmp_path: Path,
    cluster: str,
    stores: dict[str, Path],
    stores_equal: Callable[[Path, Path], None],
) -> None:
    """Workers outlive a sort: a store re-created at the same path (another dataset) must not
    be sorted with what the workers remember of the old one."""
    from sortkd_cache.pipelines.dump import DumpConfig, dump
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    store = tmp_path / "same.zarr"
    shutil.copytree(stores["raw"], store)
    sort_store(SortConfig(store=str(store), scheduler=cluster, progress=False))
    cfg = DumpConfig(
        dataset="fake:384:7:16",
        teacher="resnet8",
        teacher_init="random",
        views=2,
        seed=3,
        chunk_samples=64,
        device="cpu",
        progress=False,
        out=str(store),
        overwrite=True,
    )
    dump(cfg)
    reference = tmp_path / "reference.zarr"
    dump(dataclasses.replace(cfg, out=str(reference), overwrite=False))
    sort_store(SortConfig(store=str(reference), progress=False))
    sort_store(SortConfig(store=str(store), scheduler=cluster, progress=False))
    stores_equal(reference, store)


def test_unreachable_scheduler_is_one_line_error(
    tmp_path: Path,
    stores: dict[str, Path],
    scale_env: dict[str, str],
    cli_cmd: Callable[..., list[str]],
) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.run(
        cli_cmd(
            "sort",
            str(stores["raw"]),
            "--scheduler",
            f"tcp://127.0.0.1:{port}",
            "--out",
            str(tmp_path / "o.zarr"),
        ),
        env=scale_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: cannot reach Dask scheduler")
