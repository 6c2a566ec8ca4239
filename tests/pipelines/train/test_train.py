"""Training from the cache: equality with an online teacher, resume, data paths, run dir."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from sortkd_cache import open_store
from sortkd_cache.checkpoint import load_state_dict
from sortkd_cache.losses import LOSSES, option_info
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.pipelines.train._config import RUNTIME_KEYS
from sortkd_cache.testing import invoke, one_error_line, run_cli

from ...conftest import TRAIN_BASE as BASE


def _weights(run: Path) -> dict[str, torch.Tensor]:
    return load_state_dict(run / "model.safetensors")


def _rel(a: list[float], b: list[float]) -> float:
    x, y = np.asarray(a), np.asarray(b)
    return float(np.max(np.abs(x - y) / np.maximum(np.abs(y), 1e-12)))


@pytest.mark.parametrize("kind", ["raw", "sort"])
def test_cached_equals_online_teacher(
    digits_store: Path, digits_teacher: Path, tmp_path: Path, kind: str
) -> None:
    cached = train(
        TrainConfig(
            cache=str(digits_store), logits=kind, loss="kd", out=str(tmp_path / "cached"), **BASE
        )
    )
    online = train(
        TrainConfig(
            cache=str(digits_store),
            logits=kind,
            loss="kd",
            online_teacher="digits_cnn_l",
            teacher_ckpt=str(digits_teacher),
            out=str(tmp_path / "online"),
            **BASE,
        )
    )
    assert len(cached.step_losses) == len(online.step_losses) == 2 * (1437 // 64 + 1)
    assert _rel(cached.step_losses, online.step_losses) <= 1e-4
    wa, wb = _weights(tmp_path / "cached"), _weights(tmp_path / "online")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4)


def test_sort_changes_the_run_only_through_changed_rows(digits_store: Path, tmp_path: Path) -> None:
    store = open_store(digits_store)
    changed = store.kind_attrs("sort")["stats"]["changed_rows"]
    raw = train(
        TrainConfig(
            cache=str(digits_store), logits="raw", loss="kd", out=str(tmp_path / "raw"), **BASE
        )
    )
    srt = train(
        TrainConfig(
            cache=str(digits_store), logits="sort", loss="kd", out=str(tmp_path / "sort"), **BASE
        )
    )
    if sum(changed[:2]) == 0:
        assert raw.step_losses == srt.step_losses
    else:
        assert raw.step_losses != srt.step_losses


def test_resume_continues_to_same_result(digits_store: Path, tmp_path: Path) -> None:
    cfg = dict(
        cache=str(digits_store), logits="sort", loss="dkd", loss_options={"dkd_warmup": 1}, **BASE
    )
    full = train(TrainConfig(out=str(tmp_path / "full"), **cfg))
    part = train(TrainConfig(out=str(tmp_path / "part"), stop_after=1, **cfg))
    assert not part.finished and part.epochs == 1
    assert not (tmp_path / "part" / "summary.json").exists()
    rest = train(TrainConfig(out=str(tmp_path / "part"), resume=True, **cfg))
    assert rest.finished and rest.epochs == 2
    assert part.step_losses + rest.step_losses == full.step_losses
    wa, wb = _weights(tmp_path / "full"), _weights(tmp_path / "part")
    for name in wa:
        assert torch.equal(wa[name], wb[name]), name
    drop = ("seconds",)
    rows_a = [
        {k: v for k, v in r.items() if k not in drop}
        for r in map(json.loads, (tmp_path / "full" / "metrics.jsonl").read_text().splitlines())
    ]
    rows_b = [
        {k: v for k, v in r.items() if k not in drop}
        for r in map(json.loads, (tmp_path / "part" / "metrics.jsonl").read_text().splitlines())
    ]
    assert rows_a == rows_b


def test_device_and_loader_paths_give_same_batches(digits_store: Path, tmp_path: Path) -> None:
    cfg = dict(cache=str(digits_store), logits="sort", loss="kd", **{**BASE, "epochs": 1})
    dev = train(TrainConfig(out=str(tmp_path / "dev"), data_path="device", **cfg))
    ldr = train(TrainConfig(out=str(tmp_path / "ldr"), data_path="loader", workers=2, **cfg))
    assert dev.step_losses == ldr.step_losses


@pytest.mark.parametrize("loss", ["ce", "dkd", "lskd", "ctkd"])
def test_every_loss_trains_from_cache(digits_store: Path, tmp_path: Path, loss: str) -> None:
    res = train(
        TrainConfig(
            cache=str(digits_store),
            logits="raw" if loss == "ce" else "sort",
            loss=loss,
            out=str(tmp_path / loss),
            **{**BASE, "epochs": 1},
        )
    )
    assert res.finished and all(np.isfinite(res.step_losses))
    row = json.loads((tmp_path / loss / "metrics.jsonl").read_text().splitlines()[0])
    assert {"loss", "ce", "train_top1", "test_top1", "lr", "seconds", "view"} <= set(row)
    if loss == "ctkd":
        assert row["temperature"] > 1.0


def test_run_dir_contents(digits_store: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    train(
        TrainConfig(
            cache=str(digits_store), logits="swap", loss="kd", out=str(run), **{**BASE, "epochs": 2}
        )
    )
    names = {p.name for p in run.iterdir()}
    assert {
        "config.json",
        "metrics.jsonl",
        "summary.json",
        "curves.png",
        "model.safetensors",
        "checkpoint.pt",
    } <= names
    summary = json.loads((run / "summary.json").read_text())
    assert summary["epochs"] == 2 and 0 <= summary["best_test_top1"] <= 100
    config = json.loads((run / "config.json").read_text())
    assert config["logits"] == "swap" and config["resolved"]["store_views"] == 4
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["view"] for r in rows] == [0, 1]  # epoch e uses view e mod V
    assert (run / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cached_view_dataset_matches_store(digits_store: Path) -> None:
    import sortkd_cache as sk

    store = sk.open_store(digits_store)
    data = sk.CachedViewDataset(store, kind="sort")
    data.set_epoch(5)  # view 5 mod 4 = 1
    assert data.view == 1
    x, y, soft = data[7]
    assert y == int(store.labels[7])
    assert torch.equal(soft, torch.from_numpy(store.logits("sort")[7, 1].astype(np.float32)))
    ds = data.dataset
    ref = sk.render(ds.tensor[7:8], store.params(1)[7:8], data.recipe, ds.info.mean, ds.info.std)
    assert torch.equal(x, ref[0])


def test_cli_bad_inputs(make_store, tmp_path: Path) -> None:
    store = make_store()  # fake:200:10:8, raw only
    common = ["--student", "digits_cnn_s", "--epochs", "1", "--no-progress"]
    one_error_line(
        invoke(
            "train",
            "--cache",
            str(store),
            "--num-classes",
            "100",
            *common,
            "--out",
            str(tmp_path / "a"),
        ),
        "has 10 classes but the student is built for 100",
    )
    one_error_line(
        invoke(
            "train",
            "--cache",
            str(store),
            "--logits",
            "sort",
            *common,
            "--out",
            str(tmp_path / "b"),
        ),
        "no complete 'sort' logits",
    )
    one_error_line(
        invoke(
            "train",
            "--cache",
            str(store),
            "--dataset",
            "fake:200:10:9",
            *common,
            "--out",
            str(tmp_path / "c"),
        ),
        "fingerprint",
    )
    ok = invoke("train", "--cache", str(store), *common, "--out", str(tmp_path / "d"))
    assert ok.exit_code == 0, ok.stderr
    one_error_line(
        invoke("train", "--cache", str(store), *common, "--out", str(tmp_path / "d")),
        "already holds a finished run",
    )
    one_error_line(
        invoke(
            "train",
            "--cache",
            str(store),
            "--loss",
            "fitnet",
            *common,
            "--out",
            str(tmp_path / "e"),
        ),
        "unknown --loss 'fitnet'",
    )


# -- every loss option acts (derived from the loss registry) -----------------------------------


SMALL = {
    "student": "digits_mlp",
    "logits": "sort",
    "epochs": 1,
    "milestones": (),
    "batch_size": 32,
    "progress": False,
    "device": "cpu",
}


def _steps(store: Path, out: Path, loss: str, options: dict[str, float]) -> list[float]:
    small = {**SMALL, "logits": "raw"} if loss == "ce" else SMALL  # ce reads no soft labels
    cfg = TrainConfig(cache=str(store), out=str(out), loss=loss, loss_options=options, **small)
    return train(cfg).step_losses


@pytest.mark.slow
@pytest.mark.parametrize("loss", sorted(LOSSES.names()))
def test_every_option_of_every_loss_changes_the_first_steps(
    small_store: Path, tmp_path: Path, loss: str
) -> None:
    """A new loss or option is covered without editing this test. The first step's loss
    changes, except for CTKD's lambda options: they scale only the learnable temperature's
    gradient, so the first step's update of the temperature changes instead."""

    def temperature(run: Path) -> float:
        state = torch.load(run / "checkpoint.pt", map_location="cpu", weights_only=True)
        return float(state["temperature"]["param"])

    base = _steps(small_store, tmp_path / "base", loss, {})
    for info in option_info(LOSSES.get(loss)):
        other = info.default + 3 if info.kind is int else info.default * 0.5 + 0.3
        steps = _steps(small_store, tmp_path / info.name, loss, {info.name: other})
        if info.name.startswith("ctkd_lambda"):
            assert steps[0] == base[0], info.name
            assert temperature(tmp_path / info.name) != temperature(tmp_path / "base"), info.name
        else:
            assert steps[0] != base[0], info.name
        config = json.loads((tmp_path / info.name / "config.json").read_text())
        assert config["loss_options"][info.name] == other  # the value as used


def test_flags_that_used_to_be_ignored_act(small_store: Path, tmp_path: Path) -> None:
    """`--loss dkd --ce-weight 0.5` and `--loss lskd --temperature 8 --kd-weight 1` trained
    with the defaults before (issue 11)."""
    dkd = _steps(small_store, tmp_path / "dkd", "dkd", {})
    assert _steps(small_store, tmp_path / "dkd-ce", "dkd", {"ce_weight": 0.5})[0] != dkd[0]
    lskd = _steps(small_store, tmp_path / "lskd", "lskd", {})
    changed = _steps(small_store, tmp_path / "lskd-t", "lskd", {"temperature": 8, "kd_weight": 1})
    assert changed[0] != lskd[0]
    config = json.loads((tmp_path / "lskd-t" / "config.json").read_text())
    assert config["loss"] == "lskd"
    assert config["loss_options"] == {"temperature": 8.0, "ce_weight": 0.1, "kd_weight": 1.0}


@pytest.mark.slow
def test_config_json_replays_the_run(small_store: Path, tmp_path: Path) -> None:
    """`train --config RUN/config.json --out NEW` reproduces the run's first-step loss."""
    first = tmp_path / "first"
    proc = run_cli(
        "train",
        "--cache",
        str(small_store),
        *("--student", "digits_mlp", "--logits", "sort", "--loss", "dkd", "--dkd-beta", "3"),
        *("--ce-weight", "0.4", "--epochs", "1", "--batch-size", "32", "--milestones", ""),
        *("--device", "cpu", "--no-progress", "--json", "--out", str(first)),
    )
    assert proc.returncode == 0, proc.stderr
    again = tmp_path / "again"
    proc = run_cli("train", "--config", str(first / "config.json"), "--out", str(again), "--json")
    assert proc.returncode == 0, proc.stderr
    a = json.loads((first / "config.json").read_text())
    b = json.loads((again / "config.json").read_text())
    for key in RUNTIME_KEYS - {"cache", "dataset"}:  # how it ran, not what it computed
        a.pop(key, None), b.pop(key, None)
    assert a == b
    assert a["loss_options"]["dkd_beta"] == 3.0 and a["loss_options"]["ce_weight"] == 0.4

    def rows(run: Path) -> list[dict[str, float]]:
        lines = (run / "metrics.jsonl").read_text().splitlines()
        return [{k: v for k, v in json.loads(r).items() if k != "seconds"} for r in lines]

    assert rows(first) == rows(again)
    replay = {k: v for k, v in a.items() if k not in ("resolved", "provenance")}
    steps = train(TrainConfig.from_dict({**replay, "out": str(tmp_path / "py")})).step_losses
    assert sum(steps) / len(steps) == pytest.approx(rows(first)[0]["loss"], rel=1e-6)


# -- one data path: the public batches are the stage's ------------------------------------------


@pytest.mark.parametrize("path", ["device", "loader"])
def test_own_loop_on_public_batches_reproduces_the_stage(
    small_store: Path, tmp_path: Path, path: str
) -> None:
    """A researcher's loop on sk.EpochBatches gives the stage's batches and step losses."""
    import sortkd_cache as sk
    from sortkd_cache.pipelines.train import Trainer

    cfg = TrainConfig(
        cache=str(small_store), out=str(tmp_path / "run"), loss="kd", data_path=path,
        **{**SMALL, "epochs": 2},
    )  # fmt: skip
    trainer = Trainer(cfg)
    trainer.setup()
    store = sk.open_store(small_store)
    public = sk.EpochBatches.from_store(store, "sort", batch_size=32, seed=0, path=path)
    for epoch in (0, 1):
        stage_batches = list(trainer.batches.epoch(epoch))
        mine = list(public.epoch(epoch))
        assert len(mine) == len(stage_batches) == 3
        for a, b in zip(mine, stage_batches, strict=True):
            for u, v in zip(a, b, strict=True):
                assert torch.equal(u, v)
    trainer.batches.close()

    stage = train(dataclasses.replace(cfg, out=str(tmp_path / "stage"))).step_losses
    torch.manual_seed(0)
    model = sk.create_model("digits_mlp", store.num_classes, 3)
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    loss_fn = sk.make_loss("kd")
    losses = []
    for epoch in range(2):
        for b in public.epoch(epoch):
            loss, _ = sk.compute_loss(loss_fn, model(b.x), b.soft, b.y, epoch=epoch + 1)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    assert losses == stage


def test_cached_view_dataset_items_are_the_batches_rows(small_store: Path) -> None:
    import sortkd_cache as sk

    store = sk.open_store(small_store)
    data = sk.CachedViewDataset(store, kind="sort")
    batches = sk.EpochBatches.from_store(store, "sort", batch_size=32, seed=3)
    for epoch in (0, 1):
        data.set_epoch(epoch, seed=3)
        b = next(iter(batches.epoch(epoch)))
        for row, i in enumerate(b.idx.tolist()[:5]):
            x, y, soft = data[i]
            assert y == int(b.y[row])
            assert torch.equal(x, b.x[row])
            assert torch.equal(soft, b.soft[row].float())


# -- provenance of a student ---------------------------------------------------------------------


def test_run_records_which_cache_it_learnt_from(small_store: Path, tmp_path: Path) -> None:
    """config.json and summary.json name the cache, also after the store was copied."""
    from sortkd_cache.store import copy_store

    store = open_store(small_store)
    moved = tmp_path / "moved.zarr"
    copy_store(small_store, moved, progress=False)
    run = tmp_path / "run"
    train(TrainConfig(cache=str(moved), out=str(run), loss="kd", **SMALL))
    for name in ("config.json", "summary.json"):
        prov = json.loads((run / name).read_text())["provenance"]
        assert prov["store_id"] == store.meta.store_id and len(prov["store_id"]) == 32
        assert prov["teacher"] == {"arch": "resnet8", "sha256": store.meta.teacher.sha256}
        assert prov["dataset"]["fingerprint"] == store.meta.dataset.fingerprint
        assert prov["logits"] == "sort"
        assert prov["logits_record"]["created"] == store.kind_attrs("sort")["created"]
    ce = tmp_path / "ce"
    train(TrainConfig(dataset="fake:96:10:8", out=str(ce), loss="ce", **{**SMALL, "logits": "raw"}))
    assert json.loads((ce / "summary.json").read_text())["provenance"] is None


def test_resume_from_another_cache_is_refused(
    small_store: Path, make_store, tmp_path: Path
) -> None:
    from sortkd_cache.errors import ConfigError

    run = tmp_path / "run"
    cfg = TrainConfig(cache=str(small_store), out=str(run), loss="ce", stop_after=1,
                      **{**SMALL, "epochs": 2, "logits": "raw"})  # fmt: skip
    train(cfg)
    other = make_store(dataset="fake:96:10:8", views=2, chunk_samples=48)
    again = dataclasses.replace(cfg, cache=str(other), stop_after=None, resume=True)
    with pytest.raises(ConfigError, match=r"another configuration \(cache store_id "):
        train(again)


# -- data_seed: the data order's own seed ---------------------------------------------------------


def test_data_seed_sets_the_data_order_apart_from_the_init_seed(
    small_store: Path, tmp_path: Path
) -> None:
    """Same data_seed, other seed: the same batches and views; another data_seed: another
    order. Without data_seed the order follows seed, as it did before data_seed existed."""
    from sortkd_cache.pipelines.train._setup import prepare

    def order(**kw: object) -> list[list[int]]:
        cfg = TrainConfig(cache=str(small_store), out=str(tmp_path / "x"), **SMALL,
                          views_order="shuffle", **kw)  # type: ignore[arg-type]  # fmt: skip
        batches = prepare(cfg).batches(torch.device("cpu"), None)
        return [[batches.view(e), *batches.local_order(e).tolist()] for e in range(4)]

    assert order(seed=1, data_seed=7) == order(seed=2, data_seed=7)
    assert order(seed=1, data_seed=7) != order(seed=1, data_seed=8)
    assert order(seed=3) == order(seed=5, data_seed=3)  # None: same as seed


def test_data_seed_is_recorded_and_checked_on_resume() -> None:
    from sortkd_cache.pipelines.train._config import resume_difference

    cfg = TrainConfig(cache="c.zarr", out="r", **SMALL, seed=4)  # type: ignore[arg-type]
    old = {k: v for k, v in cfg.to_dict().items() if k != "data_seed"}  # recorded before it
    assert cfg.to_dict()["data_seed"] is None
    assert resume_difference(old, cfg) is None
    assert resume_difference(old, dataclasses.replace(cfg, data_seed=4)) is None
    diff = resume_difference(old, dataclasses.replace(cfg, data_seed=5))
    assert diff == "--data-seed 4 -> 5"


def test_a_ce_run_recorded_with_logits_sort_still_resumes() -> None:
    """Before the refusal, `--loss ce --logits sort` was accepted (and did nothing): its run
    directory resumes with the options that are accepted now."""
    from sortkd_cache.pipelines.train._config import resume_difference

    cfg = TrainConfig(cache="c.zarr", out="r", loss="ce", **{**SMALL, "logits": "raw"})
    old = {**cfg.to_dict(), "logits": "sort"}
    assert resume_difference(old, cfg) is None
    assert resume_difference({**old, "lr": 1.0}, cfg) == "--lr 1.0 -> 0.05"
