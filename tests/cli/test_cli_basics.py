"""The command line: help with examples, `info`, `dump`, and bad inputs (exit 2, one line).

Most cases run in-process through click's runner (the same group, error mapping and exit
codes as the console script); a few run the installed console script in a subprocess.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from sortkd_cache.checkpoint import save_weights
from sortkd_cache.cli.main import COMMANDS, all_commands
from sortkd_cache.models import create_model
from sortkd_cache.pipelines.dump import DumpConfig, dump
from sortkd_cache.testing import invoke, one_error_line, run_cli

SPEC = "fake:120:10:8"
FAST = ["--dataset", SPEC, "--teacher", "digits_mlp", "--views", "2", "--chunk-samples", "64"]


def set_schema(store: Path, schema: int) -> None:
    zj = store / "zarr.json"
    doc = json.loads(zj.read_text())
    doc["attributes"]["sortkd_cache"]["schema"] = schema
    zj.write_text(json.dumps(doc))


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli")
    torch.manual_seed(0)
    mlp = create_model("digits_mlp", num_classes=10, in_chans=3)
    save_weights(mlp, root / "mlp.safetensors")
    state = {k: v.clone() for k, v in mlp.state_dict().items()}
    state["fc1.weight"][0, 0] = float("nan")
    save_weights(state, root / "nan.safetensors")
    save_weights(create_model("resnet8", num_classes=10, in_chans=3), root / "r8.safetensors")
    store = root / "store.zarr"
    dump(
        DumpConfig(
            dataset=SPEC,
            teacher="digits_mlp",
            teacher_ckpt=str(root / "mlp.safetensors"),
            views=2,
            chunk_samples=64,
            out=str(store),
            progress=False,
            device="cpu",
        )
    )
    return {"root": root, "store": store, **{p.stem: p for p in root.glob("*.safetensors")}}


@pytest.mark.fast
@pytest.mark.parametrize("command", [None, "dump", "info"])
def test_help_shows_examples(command: str | None) -> None:
    result = invoke(*([command] if command else []), "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output or "Typical session:" in result.output
    if command:
        assert f"sortkd-cache {command}" in result.output


@pytest.mark.fast
def test_version() -> None:
    from sortkd_cache import __version__

    result = invoke("--version")
    assert result.exit_code == 0 and __version__ in result.output


@pytest.mark.fast
def test_info_json_has_the_documented_keys(files: dict[str, Path]) -> None:
    result = invoke("info", str(files["store"]), "--json")
    assert result.exit_code == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["schema"] == 3
    assert (info["num_samples"], info["num_views"], info["num_classes"]) == (120, 2, 10)
    assert info["logits"] == ["raw"]
    assert info["dataset"]["name"] == "fake" and info["dataset"]["fingerprint"].startswith(
        "sha256:"
    )
    assert info["teacher"]["arch"] == "digits_mlp" and len(info["teacher"]["sha256"]) == 64
    assert info["seed"] == 0 and info["augment"]["name"] == "cifar"
    assert len(info["teacher_accuracy"]) == 2
    assert info["complete"] is True and info["writer"] is None


@pytest.mark.fast
def test_info_human_readable(files: dict[str, Path]) -> None:
    result = invoke("info", str(files["store"]))
    assert result.exit_code == 0
    out = result.stdout
    assert "120 samples x 2 views x 10 classes, float16" in out
    assert "digits_mlp" in out and "logits     raw" in out


@pytest.mark.fast
def test_dump_json_and_float32(files: dict[str, Path], tmp_path: Path) -> None:
    out = tmp_path / "d.zarr"
    args = [*FAST, "--teacher-init", "random", "--dtype", "float32", "--out", str(out)]
    result = invoke("dump", *args, "--json")
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["units_written"] == 4 and report["units_skipped"] == 0
    assert len(report["teacher_accuracy"]) == 2
    info = json.loads(invoke("info", str(out), "--json").stdout)
    assert info["dtype"] == "float32" and info["teacher"]["init"] == "random"
    again = invoke("dump", *args, "--resume")
    assert again.exit_code == 0 and "(4 already done)" in again.stdout


def bad_dump_cases(files: dict[str, Path], tmp: Path) -> dict[str, tuple[list[str], list[str]]]:
    """name -> (dump arguments, strings the error line must contain)."""
    out = ["--out", str(tmp / "new.zarr")]
    mlp = ["--dataset", SPEC, "--teacher", "digits_mlp"]
    rnd = [*FAST, "--teacher-init", "random"]
    return {
        "unknown dataset": (["--dataset", "cifar11", "--teacher", "digits_mlp", *out], ["cifar11"]),
        "malformed fake": (
            ["--dataset", "fake:1:x", "--teacher", "digits_mlp", *out],
            ["fake:1:x"],
        ),
        "unknown model": (["--dataset", SPEC, "--teacher", "resnet9", *out], ["resnet9"]),
        "missing checkpoint": ([*mlp, "--teacher-ckpt", str(tmp / "gone.pt"), *out], ["gone.pt"]),
        "no weights": ([*mlp, *out], ["--teacher-ckpt"]),
        "other architecture": (
            [*mlp, "--teacher-ckpt", str(files["r8"]), *out],
            ["r8.safetensors", "digits_mlp"],
        ),
        "views 0": ([*rnd, "--views", "0", *out], ["--views", "0"]),
        "existing store": (
            [*rnd, "--out", str(files["store"])],
            [str(files["store"]), "--overwrite"],
        ),
        "nan logits": (
            [*FAST, "--teacher-ckpt", str(files["nan"]), "--out", str(tmp / "nan.zarr")],
            ["nan", "sample 0", "view 0"],
        ),
        "unknown augment": ([*rnd, "--augment", "zoom", *out], ["zoom"]),
        "bad device": ([*rnd, "--device", "tpu", *out], ["tpu"]),
    }


CASES = [
    "unknown dataset",
    "malformed fake",
    "unknown model",
    "missing checkpoint",
    "no weights",
    "other architecture",
    "views 0",
    "existing store",
    "nan logits",
    "unknown augment",
    "bad device",
]


@pytest.mark.fast
@pytest.mark.parametrize("case", CASES)
def test_bad_dump_inputs_exit_2_with_one_line(files, tmp_path: Path, case: str) -> None:
    cases = bad_dump_cases(files, tmp_path)
    assert sorted(cases) == sorted(CASES)
    args, names = cases[case]
    result = invoke("dump", *args)
    one_error_line(result, *names)
    assert result.stdout == ""


@pytest.mark.fast
def test_nan_dump_keeps_an_incomplete_store(files, tmp_path: Path) -> None:
    store = tmp_path / "nan.zarr"
    result = invoke("dump", *FAST, "--teacher-ckpt", str(files["nan"]), "--out", str(store))
    assert result.exit_code == 2
    info = json.loads(invoke("info", str(store), "--json").stdout)
    assert info["complete"] is False and info["logits"] == []


@pytest.mark.fast
def test_newer_schema_is_refused_by_info_and_dump_resume(files, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "future.zarr"
    shutil.copytree(files["store"], store)
    from sortkd_cache.store import SCHEMA_VERSION

    newer = SCHEMA_VERSION + 1
    set_schema(store, newer)
    result = invoke("info", str(store))
    one_error_line(result, f"schema {newer}")
    args = [*FAST, "--teacher-ckpt", str(files["mlp"]), "--out", str(store), "--resume"]
    result = invoke("dump", *args)
    one_error_line(result, f"schema {newer}")


@pytest.mark.fast
def test_missing_array_and_missing_store_are_refused(files, tmp_path: Path) -> None:
    import shutil

    store = tmp_path / "broken.zarr"
    shutil.copytree(files["store"], store)
    shutil.rmtree(store / "aug_params")
    result = invoke("info", str(store))
    one_error_line(result, "aug_params")
    result = invoke("info", str(tmp_path / "absent.zarr"))
    one_error_line(result, "absent.zarr")


def test_console_script_bad_model_and_newer_schema(files, tmp_path: Path) -> None:
    """The real process: exit code 2 and exactly one stderr line."""
    r = run_cli("dump", "--dataset", SPEC, "--teacher", "resnet9", "--out", str(tmp_path / "x"))
    one_error_line(r, "resnet9")
    import shutil

    store = tmp_path / "future.zarr"
    shutil.copytree(files["store"], store)
    set_schema(store, 99)  # newer than this version reads
    r = run_cli("info", str(store), "--json")
    one_error_line(r, "schema 99")
    assert r.stdout == ""


def test_console_script_nan_logits(files, tmp_path: Path) -> None:
    out = tmp_path / "nan.zarr"
    r = run_cli("dump", *FAST, "--teacher-ckpt", str(files["nan"]), "--out", str(out))
    one_error_line(r, "nan", "sample 0, view 0")


@pytest.mark.fast
def test_every_command_is_named_with_its_module() -> None:
    """The group imports a command's module when it is first used; the names it offers are
    exactly the commands that the modules define."""
    commands = all_commands()
    assert set(commands) == set(COMMANDS)
    for name, cmd in commands.items():
        assert cmd.name == name and cmd.callback is not None
        assert cmd.callback.__module__ == f"sortkd_cache.cli.{COMMANDS[name]}"
