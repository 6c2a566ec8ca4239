"""`train --topk` and `--sparse-tail`: each acts, each misuse is refused (exit 2, one line).

``--topk K`` on a dense store truncates each batch's rows as ``copy --topk K`` stores them, so
it trains exactly like the copy; with an online teacher it truncates the teacher's logits the
same way; on a sparse store it must equal the store's K. ``--sparse-tail`` picks the sparse
loss's tail handling (top-K rows: uniform | bucket; sampled rows: student | counts) and is
refused where there is no sparse teacher or the rows do not take the name.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch

from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.copy import DeriveConfig, derive_store
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.sparse import DEFAULT_SAMPLED_TAIL, DEFAULT_TAIL, SAMPLED_TAILS, TAILS
from sortkd_cache.testing import invoke, topk_store

SMALL = {
    "student": "digits_mlp",
    "logits": "sort",
    "epochs": 2,
    "milestones": (),
    "batch_size": 32,
    "progress": False,
    "device": "cpu",
}


@pytest.fixture(scope="module")
def top3(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``copy --topk 3`` of the small dense store (fake:96:10:8, raw + sort, float16)."""
    out = tmp_path_factory.mktemp("top3") / "top3.zarr"
    topk_store(small_store, out, 3)
    return out


@pytest.fixture(scope="module")
def sampled3(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``copy --sample 3`` of the small dense store."""
    out = tmp_path_factory.mktemp("sampled3") / "sampled3.zarr"
    derive_store(str(small_store), str(out), DeriveConfig(sample=3), progress=False)
    return out


def _config(run: Path) -> dict[str, object]:
    data: dict[str, object] = json.loads((run / "config.json").read_text())
    return data


@pytest.mark.parametrize(("kind", "loss"), [("raw", "kd"), ("sort", "dkd"), ("sort", "lskd")])
def test_dense_store_with_topk_trains_like_its_copy_topk(
    small_store: Path, top3: Path, tmp_path: Path, kind: str, loss: str
) -> None:
    """Step for step and weight for weight: the truncation is copy --topk's, on the fly."""
    common = {**SMALL, "logits": kind, "loss": loss}
    dense = train(TrainConfig(cache=str(small_store), topk=3, out=str(tmp_path / "a"), **common))  # type: ignore[arg-type]
    copy = train(TrainConfig(cache=str(top3), out=str(tmp_path / "b"), **common))  # type: ignore[arg-type]
    assert len(dense.step_losses) == 6
    assert dense.step_losses == copy.step_losses
    wa, wb = (load_state_dict(tmp_path / n / "model.safetensors") for n in ("a", "b"))
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    full = train(TrainConfig(cache=str(small_store), out=str(tmp_path / "c"), **common))  # type: ignore[arg-type]
    assert full.step_losses[0] != dense.step_losses[0]  # the truncation acts
    resolved = _config(tmp_path / "a")["resolved"]
    assert isinstance(resolved, dict)
    assert _config(tmp_path / "a")["topk"] == 3 and resolved["topk"] == 3
    assert resolved["sparse_truncation"] == "dense store rows, per batch"
    assert resolved["sparse_tail"] == DEFAULT_TAIL
    assert _config(tmp_path / "c")["resolved"]["topk"] is None  # type: ignore[index]


def test_dense_store_with_topk_streamed_trains_like_its_copy_topk_streamed(
    small_store: Path, top3: Path, tmp_path: Path
) -> None:
    """--soft-labels stream: the truncation wraps the streamed dense source just the same."""
    common = {**SMALL, "loss": "kd", "soft_labels": "stream", "stream_window": 1}
    dense = train(TrainConfig(cache=str(small_store), topk=3, out=str(tmp_path / "a"), **common))  # type: ignore[arg-type]
    copy = train(TrainConfig(cache=str(top3), out=str(tmp_path / "b"), **common))  # type: ignore[arg-type]
    assert len(dense.step_losses) == 6 and dense.step_losses == copy.step_losses
    assert _config(tmp_path / "a")["resolved"]["soft_labels"] == "stream"  # type: ignore[index]


def test_sparse_store_with_its_own_k_is_the_same_run(top3: Path, tmp_path: Path) -> None:
    a = train(TrainConfig(cache=str(top3), out=str(tmp_path / "a"), **SMALL))  # type: ignore[arg-type]
    b = train(TrainConfig(cache=str(top3), topk=3, out=str(tmp_path / "b"), **SMALL))  # type: ignore[arg-type]
    assert a.step_losses == b.step_losses
    assert _config(tmp_path / "b")["resolved"]["sparse_truncation"] == "in the store"  # type: ignore[index]


@pytest.mark.parametrize("store", ["sparse", "dense+topk"])
def test_sparse_tail_changes_the_loss_and_is_recorded(
    small_store: Path, top3: Path, tmp_path: Path, store: str
) -> None:
    where = {"cache": str(top3)} if store == "sparse" else {"cache": str(small_store), "topk": 3}
    runs = {}
    for tail in (None, "bucket", "uniform"):
        out = tmp_path / str(tail)
        cfg = TrainConfig(sparse_tail=tail, out=str(out), **where, **SMALL)  # type: ignore[arg-type]
        runs[tail] = train(cfg).step_losses
        config = _config(out)
        assert config["sparse_tail"] == tail
        assert config["resolved"]["sparse_tail"] == (tail or DEFAULT_TAIL)  # type: ignore[index]
    assert runs[None] == runs[DEFAULT_TAIL]
    assert runs["uniform"][0] != runs["bucket"][0]


@pytest.mark.parametrize("store", ["sampled", "dense+sample"])
def test_sampled_tail_changes_the_loss_and_is_recorded(
    small_store: Path, sampled3: Path, tmp_path: Path, store: str
) -> None:
    """Sampled rows take student (the default) or counts; each acts and is recorded."""
    where = (
        {"cache": str(sampled3)} if store == "sampled" else {"cache": str(small_store), "sample": 3}
    )
    runs = {}
    for tail in (None, *SAMPLED_TAILS):
        out = tmp_path / str(tail)
        cfg = TrainConfig(sparse_tail=tail, out=str(out), **where, **SMALL)  # type: ignore[arg-type]
        runs[tail] = train(cfg).step_losses
        resolved = _config(out)["resolved"]
        assert resolved["sparse_tail"] == (tail or DEFAULT_SAMPLED_TAIL)  # type: ignore[index]
    assert runs[None] == runs[DEFAULT_SAMPLED_TAIL]
    assert runs["student"][0] != runs["counts"][0]


def test_online_teacher_without_a_store_truncates_its_logits(tmp_path: Path) -> None:
    """No cache: the teacher's float32 logits are truncated to the top K per batch."""
    common = {
        **SMALL, "logits": "sort", "epochs": 1, "dataset": "fake:96:10:8",
        "online_teacher": "resnet8", "teacher_init": "random",
    }  # fmt: skip
    full = train(TrainConfig(out=str(tmp_path / "full"), **common)).step_losses  # type: ignore[arg-type]
    top = train(TrainConfig(out=str(tmp_path / "top"), topk=2, **common)).step_losses  # type: ignore[arg-type]
    other = next(t for t in TAILS if t != DEFAULT_TAIL)
    alt = train(
        TrainConfig(out=str(tmp_path / "alt"), topk=2, sparse_tail=other, **common)  # type: ignore[arg-type]
    ).step_losses
    assert full[0] != top[0] != alt[0]
    resolved = _config(tmp_path / "top")["resolved"]
    assert resolved == {**resolved, "topk": 2, "sparse_truncation": "online teacher, per batch"}


@pytest.mark.slow
def test_online_teacher_with_topk_equals_the_cached_copy(
    digits_store: Path, digits_teacher: Path, tmp_path: Path
) -> None:
    """The dense digits store's teacher online with --topk 5, against `copy --topk 5` of
    the store it dumped: the sparse twin test, reached through --topk."""
    top5 = tmp_path / "top5.zarr"
    topk_store(digits_store, top5, 5)
    common = {**SMALL, "student": "digits_cnn_s", "batch_size": 64, "milestones": (1,)}
    cached = train(TrainConfig(cache=str(top5), out=str(tmp_path / "c"), **common))  # type: ignore[arg-type]
    online = train(
        TrainConfig(
            cache=str(digits_store), topk=5, online_teacher="digits_cnn_l",
            teacher_ckpt=str(digits_teacher), out=str(tmp_path / "o"), **common,  # type: ignore[arg-type]
        )
    )  # fmt: skip
    pairs = zip(cached.step_losses, online.step_losses, strict=True)
    assert max(abs(a - b) / abs(b) for a, b in pairs) <= 1e-4


def test_resume_refuses_another_topk_or_tail(small_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = TrainConfig(cache=str(small_store), topk=3, out=str(run), stop_after=1, **SMALL)  # type: ignore[arg-type]
    train(cfg)
    again = dataclasses.replace(cfg, stop_after=None, resume=True)
    for change, needle in (
        ({"topk": 4}, "--topk 3 -> 4"),
        ({"topk": None}, "--topk 3 -> null"),
        ({"sparse_tail": "bucket"}, '--sparse-tail null -> "bucket"'),
    ):
        with pytest.raises(ConfigError, match=f"another configuration \\({needle}"):
            train(dataclasses.replace(again, **change))  # type: ignore[arg-type]
    # a run started with the default keeps the tail it used, should the default change
    config = _config(run)
    other = next(t for t in TAILS if t != DEFAULT_TAIL)
    config["resolved"]["sparse_tail"] = other  # type: ignore[index]
    (run / "config.json").write_text(json.dumps(config))
    needle = f"sparse tail '{other}' -> '{DEFAULT_TAIL}'; pass --sparse-tail"
    with pytest.raises(ConfigError, match=needle):
        train(again)
    config["resolved"]["sparse_tail"] = DEFAULT_TAIL  # type: ignore[index]
    (run / "config.json").write_text(json.dumps(config))
    assert train(again).finished


def _refusal(args: list[str]) -> str:
    result = invoke("train", *args, catch_exceptions=False)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return lines[0]


def test_every_misuse_of_topk_and_sparse_tail_exits_2_with_one_line(
    small_store: Path, top3: Path, tmp_path: Path
) -> None:
    out = tmp_path / "run"
    base = ["--student", "digits_mlp", "--epochs", "1", "--no-progress", "--out", str(out)]
    dense, sparse = ["--cache", str(small_store)], ["--cache", str(top3)]
    online = ["--dataset", "fake:96:10:8", "--online-teacher", "resnet8"]
    cases = [
        ([*dense, "--topk", "0"], ["--topk", "0", ">= 1"]),
        ([*dense, "--topk", "-2"], ["--topk", "-2"]),
        ([*dense, "--topk", "10"], ["--topk 10", "number of classes (10)"]),
        ([*online, "--teacher-init", "random", "--topk", "12"], ["--topk 12", "(10)"]),
        ([*sparse, "--topk", "4"], ["--topk 4", "top 3", "--topk 3"]),
        ([*dense, "--topk", "3", "--loss", "ce"], ["--topk 3", "--loss ce"]),
        ([*sparse, "--sparse-tail", "wide"], ["--sparse-tail", "'wide'", "uniform, bucket"]),
        ([*dense, "--sparse-tail", "uniform"], ["--sparse-tail uniform", "dense"]),
        ([*online, "--sparse-tail", "bucket"], ["--sparse-tail bucket", "dense"]),
        ([*sparse, "--sparse-tail", "uniform", "--loss", "ce"], ["--sparse-tail", "--loss ce"]),
        (
            [*sparse, "--sparse-tail", "student"],
            ["--sparse-tail student", "top-K", "uniform or bucket"],
        ),
        (
            [*dense, "--sample", "2", "--sparse-tail", "bucket"],
            ["bucket", "sampled", "student or counts"],
        ),
    ]
    for args, names in cases:
        line = _refusal([*args, *base])
        for name in names:
            assert name in line, (args, line)
        assert not out.exists(), args  # refused before the run directory is touched


def test_sort_then_train_help_documents_both_options() -> None:
    text = invoke("train", "--help").output
    assert "--topk INTEGER" in text and "copy --topk K" in text
    assert "--sparse-tail" in text and "uniform | bucket | student | counts" in text
    flat = " ".join(text.split())
    assert f"[default: {DEFAULT_TAIL} for top-K, {DEFAULT_SAMPLED_TAIL} for sampled;" in flat
