"""Hostile and careless `train` inputs: refused with exit 2 and one line, nothing touched.

Every case hashes every file of the run directory before and after: a refused command leaves
it byte-identical (a finished run is not deleted by --overwrite with a bad value, a resume with
another configuration rewrites nothing), and a refused run into a new --out creates nothing.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from sortkd_cache.losses import LOSSES, loss_options
from sortkd_cache.pipelines.train import TrainConfig, train
from sortkd_cache.testing import error_lines, invoke, run_cli

STUDENT = "digits_mlp"


def _tree(path: Path) -> dict[str, str]:
    """sha256 of every file under ``path`` (and the directories, as empty markers)."""
    out: dict[str, str] = {}
    for p in sorted(path.rglob("*")):
        rel = str(p.relative_to(path))
        out[rel] = hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "<dir>"
    return out


@pytest.fixture(scope="module")
def store(small_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The shared small store, copied so that this module's runs sit beside it."""
    import shutil

    out = tmp_path_factory.mktemp("hostile") / "s.zarr"
    shutil.copytree(small_store, out)
    return out


def _base(store: Path, out: Path, **kw: object) -> TrainConfig:
    cfg: dict[str, object] = {
        "cache": str(store),
        "student": STUDENT,
        "out": str(out),
        "epochs": 2,
        "milestones": (1,),
        "batch_size": 32,
        "device": "cpu",
        "progress": False,
    }
    cfg.update(kw)
    return TrainConfig(**cfg)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def finished(store: Path) -> Path:
    out = store.parent / "finished"
    train(_base(store, out))
    return out


@pytest.fixture(scope="module")
def unfinished(store: Path) -> Path:
    out = store.parent / "unfinished"
    train(_base(store, out, stop_after=1))
    return out


def _invoke(args: list[str]) -> tuple[int, list[str]]:
    result = invoke(*args)
    return result.exit_code, error_lines(result)


def _refused(args: list[str], run: Path, needle: str, invoke: Callable[..., object] = _invoke):
    before = _tree(run) if run.exists() else None
    code, lines = invoke(args)  # type: ignore[misc]
    assert code == 2, lines
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    assert needle in lines[0], lines[0]
    after = _tree(run) if run.exists() else None
    assert after == before
    return lines[0]


def _args(store: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        "--cache",
        str(store),
        "--student",
        STUDENT,
        "--epochs",
        "2",
        "--milestones",
        "1",
        "--batch-size",
        "32",
        "--device",
        "cpu",
        "--no-progress",
        "--out",
        str(out),
        *extra,
    ]


# -- class 3: validate everything before touching anything -----------------------------------


def _subprocess(args: list[str]) -> tuple[int, list[str]]:
    proc = run_cli(*args, timeout=180)
    return proc.returncode, error_lines(proc)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--temperature", "0"], "--temperature (loss 'kd') must be a finite number > 0, got 0.0"),
        (["--student", "resnet9000"], "unknown --student architecture 'resnet9000'"),
        (["--lr", "-1"], "--lr must be a finite number > 0, got -1.0"),
    ],
)
def test_overwrite_with_a_bad_value_keeps_the_finished_run(
    store: Path, finished: Path, extra: list[str], needle: str
) -> None:
    """Through the installed console script, as the adversarial pass ran it."""
    _refused(_args(store, finished, "--overwrite", *extra), finished, needle, _subprocess)


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--loss", "fitnet"], "unknown --loss 'fitnet'"),
        (["--logits", "sorted"], "unknown --logits 'sorted'"),
        (["--online-teacher", "nope"], "unknown --online-teacher architecture 'nope'"),
        (["--views-order", "random"], "unknown --views-order 'random'"),
        (["--data-path", "gpu"], "unknown --data-path 'gpu'"),
    ],
)
def test_a_rejected_run_creates_nothing(
    store: Path, tmp_path: Path, extra: list[str], needle: str
) -> None:
    out = tmp_path / "new"
    _refused(_args(store, out, *extra), out, needle)
    assert not out.exists()  # no config.json left behind


# -- class 7: values that cannot train ---------------------------------------------------------

BAD_VALUES = [
    (["--lr", "0"], "--lr must be a finite number > 0, got 0.0"),
    (["--lr", "-1"], "--lr must be a finite number > 0"),
    (["--lr", "nan"], "--lr must be a finite number > 0, got nan"),
    (["--lr", "inf"], "--lr must be a finite number > 0, got inf"),
    (["--momentum", "-0.1"], "--momentum must be a finite number >= 0"),
    (["--weight-decay", "-1e-4"], "--weight-decay must be a finite number >= 0"),
    (["--weight-decay", "nan"], "--weight-decay must be a finite number >= 0, got nan"),
    (["--lr-decay", "0"], "--lr-decay must be a finite number > 0"),
    (["--lr-decay", "-1"], "--lr-decay must be a finite number > 0"),
    (["--milestones", "2,1"], "--milestones must be increasing epochs, got [2, 1]"),
    (["--milestones", "1,1"], "--milestones must be increasing epochs, got [1, 1]"),
    (["--milestones", "0,3"], "--milestones must be epochs >= 1, got [0, 3]"),
    (["--milestones", "-5"], "--milestones must be epochs >= 1, got [-5]"),
    (["--workers", "-1"], "--workers must be an integer >= 0, got -1"),
    (["--epochs", "0"], "--epochs must be an integer >= 1, got 0"),
    (["--batch-size", "1"], "--batch-size must be an integer >= 2, got 1"),
    (["--seed", "-3"], "--seed must be an integer >= 0, got -3"),
    (["--temperature", "nan"], "--temperature (loss 'kd') must be a finite number > 0, got nan"),
    (["--kd-weight", "-1"], "--kd-weight (loss 'kd') must be a finite number >= 0, got -1.0"),
]


@pytest.mark.parametrize(("extra", "needle"), BAD_VALUES)
def test_values_that_cannot_train_are_refused_up_front(
    store: Path, finished: Path, extra: list[str], needle: str
) -> None:
    _refused(_args(store, finished, "--overwrite", *extra), finished, needle)


# -- options that do not apply to the chosen loss (derived from the registry) ------------------


def _inapplicable() -> list[tuple[str, str]]:
    return [
        (loss, key)
        for loss in LOSSES.names()
        for key, per_loss in loss_options().items()
        if loss not in per_loss
    ]


@pytest.mark.parametrize(("loss", "key"), _inapplicable())
def test_an_option_the_loss_does_not_take_is_refused(
    store: Path, finished: Path, loss: str, key: str
) -> None:
    info = next(iter(loss_options()[key].values()))
    value = "3" if info.kind is int else "0.5"
    flag = "--" + key.replace("_", "-")
    line = _refused(
        _args(store, finished, "--overwrite", "--loss", loss, flag, value),
        finished,
        f"{flag} = {info.kind(value)!r} does not apply to loss '{loss}'",
    )
    assert "its options:" in line


# -- class 6: a resume must match the stored configuration -------------------------------------


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        (["--lr", "0.1"], "(--lr 0.05 -> 0.1)"),
        (["--loss", "dkd"], '(--loss "kd" -> "dkd")'),
        (["--student", "digits_cnn_s"], '(--student "digits_mlp" -> "digits_cnn_s")'),
        (["--temperature", "2"], "(--temperature 4.0 -> 2.0)"),
        (["--logits", "sort"], '(--logits "raw" -> "sort")'),
        (["--seed", "1"], "(--seed 0 -> 1)"),
    ],
)
def test_resume_with_another_configuration_is_refused(
    store: Path, unfinished: Path, extra: list[str], needle: str
) -> None:
    _refused(_args(store, unfinished, "--resume", *extra), unfinished, needle)


def test_resume_may_change_how_it_runs_but_not_what(store: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(_base(store, out, stop_after=1))
    code, lines = _invoke(_args(store, out, "--resume", "--data-path", "loader", "--workers", "0"))
    assert code == 0, lines
    assert (out / "summary.json").is_file()
