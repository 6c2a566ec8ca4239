"""Issue 28, item 7: a dead remote endpoint gives up within ``SORTKD_REMOTE_TIMEOUT`` (it
took 38-68 s of retries, minutes for one that never answers), and ``--teacher-init
pretrained`` without a network fails at once (it took 45 s of retries). Only 127.0.0.1:
a listening socket that never answers (blackholed) and a port nobody listens on (closed)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

BOUND = 1.0
#: Generous: a step is bounded by BOUND seconds; before, these took 38 s to minutes.
GIVE_UP_WITHIN = 15.0


@pytest.fixture
def blackholed() -> Iterator[int]:
    """A port whose connections the kernel accepts and nobody ever answers."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen(64)
        yield s.getsockname()[1]


@pytest.fixture
def closed() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def offline_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SORTKD_REMOTE_TIMEOUT", str(BOUND))
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    for name in ("HF_HUB_OFFLINE", "SORTKD_OFFLINE", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)


def _timed(*args: str) -> tuple[float, str]:
    invoke("info", "http://127.0.0.1:1/warm-up.zarr")  # imports outside the timing
    t0 = time.perf_counter()
    result = invoke(*args)
    seconds = time.perf_counter() - t0
    return seconds, one_error_line(result, "cannot reach")


@pytest.mark.usefixtures("offline_env")
@pytest.mark.parametrize("scheme", ["http", "s3"])
def test_a_blackholed_endpoint_gives_up_within_the_bound(blackholed: int, scheme: str) -> None:
    endpoint = f"http://127.0.0.1:{blackholed}"
    args = (
        ["info", f"{endpoint}/team/c100.zarr"]
        if scheme == "http"
        else ["info", "s3://team/c100.zarr", "--storage-option", f"endpoint_url={endpoint}"]
    )
    seconds, line = _timed(*args)
    assert f"no answer within {BOUND:g} s" in line and "SORTKD_REMOTE_TIMEOUT" in line
    assert seconds < GIVE_UP_WITHIN, seconds


@pytest.mark.usefixtures("offline_env")
def test_a_closed_s3_endpoint_gives_up_within_the_bound(closed: int) -> None:
    endpoint = f"http://127.0.0.1:{closed}"
    seconds, line = _timed("info", "s3://team/c100.zarr", "--storage-option",
                           f"endpoint_url={endpoint}")  # fmt: skip
    assert endpoint in line and seconds < GIVE_UP_WITHIN, (seconds, line)


@pytest.mark.parametrize("value", ["0", "-3", "abc", "nan", "1e9"])
def test_a_bad_timeout_is_one_line(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("SORTKD_REMOTE_TIMEOUT", value)
    one_error_line(invoke("info", "http://127.0.0.1:1/x.zarr"), "SORTKD_REMOTE_TIMEOUT", value)


@pytest.mark.usefixtures("offline_env")
def test_pretrained_weights_without_a_network_fail_at_once(
    closed: int, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The probe's reproducer (``dump --teacher-init pretrained``, no network), with the
    weights hosts at a closed port: the hub's (``HF_ENDPOINT``) and a weights URL."""
    pytest.importorskip("timm")
    import huggingface_hub.constants

    from sortkd_cache.errors import CheckpointError
    from sortkd_cache.models import _pretrained

    monkeypatch.setattr(huggingface_hub.constants, "ENDPOINT", f"http://127.0.0.1:{closed}")
    out = tmp_path / "s.zarr"
    line = one_error_line(
        invoke("dump", "--dataset", "fake:16:1000:8", "--teacher", "timm:resnet18.a1_in1k",
               "--teacher-init", "pretrained", "--views", "1", "--device", "cpu",
               "--out", str(out)),
        "timm:resnet18.a1_in1k", f"127.0.0.1:{closed} cannot be reached", "--teacher-ckpt",
    )  # fmt: skip
    assert not out.exists(), line
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="cannot be reached"):
        _pretrained._url_file("resnet18", f"http://127.0.0.1:{closed}/resnet18.pth")
    assert time.perf_counter() - t0 < GIVE_UP_WITHIN
    assert not (tmp_path / "torch" / "hub" / "checkpoints" / "resnet18.pth").exists()


@pytest.mark.usefixtures("offline_env")
def test_a_weights_host_that_never_answers_gives_up_within_the_bound(blackholed: int) -> None:
    """It accepts the connection (the reachability check passes), then sends nothing: the
    download itself is bounded (urllib under torch.hub has no timeout of its own)."""
    from sortkd_cache.errors import CheckpointError
    from sortkd_cache.models import _pretrained

    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="cannot download weights of 'resnet18'"):
        _pretrained._url_file("resnet18", f"http://127.0.0.1:{blackholed}/resnet18.pth")
    assert time.perf_counter() - t0 < GIVE_UP_WITHIN
