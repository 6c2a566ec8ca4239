"""The example plugin package, installed, used by the commands: ``list`` shows its names with
the package; ``train``, ``sweep``, ``sort`` and ``run`` take its student, its loss and its sort
method; ``sort --method lift`` then ``train --logits lift`` equals ``train --online-teacher
--logits lift`` (each command runs in a subprocess, as a user's shell runs the installed
console script)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sortkd_cache.testing import run_cli

from .conftest import PluginSite

PACKAGE = "sortkd-plugin-example"
ONE_EPOCH = ("--epochs", "1", "--milestones", "", "--batch-size", "32", "--device", "cpu")


def _cli(site: PluginSite, *args: str) -> subprocess.CompletedProcess[str]:
    return run_cli(*args, env=site.env(), check=True)


def test_list_shows_the_package_of_each_plugin_name(plugin_site: PluginSite) -> None:
    found = json.loads(_cli(plugin_site, "list", "--json").stdout)
    kinds = {"models": "sortkd_cache.models", "losses": "sortkd_cache.losses",
             "methods": "sortkd_cache.sort_methods"}  # fmt: skip
    for kind, group in kinds.items():
        for name in plugin_site.entry_points[group]:
            assert name in found[kind]["names"]
            assert found[kind]["packages"][name] == PACKAGE
    assert "resnet8" not in found["models"]["packages"]
    text = _cli(plugin_site, "list", "models", "losses", "methods").stdout
    for name in ("pooled_mlp", "logit_mse", "lift"):
        assert f"{name} (from {PACKAGE})" in text


_LIST_PROBE = """
import json, sys
from click.testing import CliRunner
from sortkd_cache.cli.main import cli
out = CliRunner().invoke(cli, ["list", "--json"]).output
loaded = sorted(m for m in sys.modules if m in ("torch", "sortkd_plugin_example"))
print(json.dumps({"list": json.loads(out), "loaded": loaded}))
"""


def test_list_names_the_plugins_without_importing_them_or_torch(plugin_site: PluginSite) -> None:
    """Entry points are named from the installed package's metadata: ``list`` shows them with
    their package, and neither the plugin's modules nor torch are imported."""
    proc = subprocess.run([sys.executable, "-c", _LIST_PROBE], env=plugin_site.env(),
                          capture_output=True, text=True, timeout=300, check=True)  # fmt: skip
    found = json.loads(proc.stdout)
    assert found["loaded"] == []
    assert found["list"]["models"]["packages"] == {"pooled_mlp": PACKAGE}
    assert found["list"]["losses"]["packages"] == {"logit_mse": PACKAGE}
    assert found["list"]["methods"]["packages"] == {"lift": PACKAGE}


@pytest.fixture(scope="module")
def lifted(
    plugin_site: PluginSite, digits_teacher: Path, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """A float32 digits store (2 views of a trained teacher) with the plugin's ``lift`` kind,
    written by ``sort --method lift``."""
    from sortkd_cache.testing import small_dump

    out = tmp_path_factory.mktemp("lifted") / "digits.zarr"
    teacher = {"teacher": "digits_cnn_l", "teacher_ckpt": str(digits_teacher)}
    small_dump(out, dataset="digits", teacher_init="checkpoint", views=2, dtype="float32",
               chunk_samples=512, **teacher)  # fmt: skip
    _cli(plugin_site, "sort", str(out), "--method", "lift")
    return out


def test_sort_writes_the_plugin_method(lifted: Path, installed: PluginSite) -> None:
    from sortkd_plugin_example.methods import lift_numpy

    import sortkd_cache as sk

    store = sk.open_store(lifted)
    assert store.kinds() == ["raw", "lift"] and store.kind_attrs("lift")["method"] == "lift"
    for view in range(store.num_views):
        raw = store.logits("raw")[:, view]
        np.testing.assert_array_equal(store.logits("lift")[:, view], lift_numpy(raw, store.labels))


def _losses(run: Path) -> list[float]:
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.slow
def test_sorted_by_the_plugin_then_trained_equals_the_online_teacher(
    plugin_site: PluginSite, lifted: Path, digits_teacher: Path, tmp_path: Path
) -> None:
    import torch
    from safetensors.torch import load_file

    args = ["--cache", str(lifted), "--student", "pooled_mlp", "--loss", "logit_mse",
            "--logits", "lift", *ONE_EPOCH[2:], "--epochs", "2"]  # fmt: skip
    cached, online = tmp_path / "cached", tmp_path / "online"
    _cli(plugin_site, "train", *args, "--out", str(cached))
    _cli(plugin_site, "train", *args, "--online-teacher", "digits_cnn_l", "--teacher-ckpt",
         str(digits_teacher), "--out", str(online))  # fmt: skip
    a, b = np.asarray(_losses(cached)), np.asarray(_losses(online))
    assert len(a) == 2 and float(np.max(np.abs(a - b) / np.abs(b))) <= 1e-4
    wa, wb = load_file(cached / "model.safetensors"), load_file(online / "model.safetensors")
    for name in wa:
        torch.testing.assert_close(wa[name], wb[name], rtol=1e-3, atol=1e-4)


def _config(run: Path) -> dict[str, object]:
    loaded: dict[str, object] = json.loads((run / "config.json").read_text())
    return loaded


def test_train_takes_the_plugin_student_and_loss(
    plugin_site: PluginSite, small_store: Path, tmp_path: Path
) -> None:
    run = tmp_path / "run"
    args = ["--student", "pooled_mlp", "--loss", "logit_mse", "--mse-weight", "0.5"]
    _cli(plugin_site, "train", "--cache", str(small_store), *args, "--logits", "sort",
         *ONE_EPOCH, "--out", str(run))  # fmt: skip
    cfg = _config(run)
    assert cfg["student"] == "pooled_mlp" and cfg["loss"] == "logit_mse"
    assert json.dumps(cfg).count('"mse_weight": 0.5') == 1
    assert (run / "model.safetensors").is_file()


def test_module_callable_student_trains_without_registration(
    plugin_site: PluginSite, tmp_path: Path
) -> None:
    src = PluginSite(plugin_site.paths[:1], {})  # the source on the path, no metadata at all
    name = "sortkd_plugin_example.models:pooled_mlp"
    run = tmp_path / "run"
    _cli(src, "train", "--dataset", "digits", "--student", name, "--loss", "ce", *ONE_EPOCH,
         "--out", str(run))  # fmt: skip
    assert _config(run)["student"] == name and (run / "model.safetensors").is_file()


@pytest.mark.slow
def test_sweep_takes_the_plugin_student_loss_and_method(
    plugin_site: PluginSite, lifted: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    _cli(plugin_site, "sweep", "--cache", str(lifted), "--student", "pooled_mlp",
         "--student", "digits_mlp", "--loss", "logit_mse,kd", "--logits", "raw,lift",
         "--seeds", "0", *ONE_EPOCH, "--out", str(out))  # fmt: skip
    configs = [_config(p.parent) for p in out.glob("*/config.json")]
    grid = {(c["student"], c["loss"], c["logits"]) for c in configs}
    assert ("pooled_mlp", "logit_mse", "lift") in grid and ("digits_mlp", "kd", "raw") in grid
    assert len(grid) == 8, json.loads((out / "summary.json").read_text())


RECIPE = """\
name = "plugin"
seeds = [0]
threads = 1

[dataset]
spec = "digits"

[teacher]
arch = "sortkd_plugin_example.models:pooled_mlp"
epochs = 1
milestones = []

[dump]
views = 1

[sort]
methods = ["lift"]

[train]
student = "pooled_mlp"
epochs = 1
milestones = []

[[students]]
name = "MSE lift"
loss = "logit_mse"
mse_weight = 0.5
logits = "lift"
"""


@pytest.mark.slow
def test_run_takes_the_plugin_teacher_student_loss_and_method(
    plugin_site: PluginSite, tmp_path: Path, installed: PluginSite
) -> None:
    recipe = tmp_path / "plugin.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    _cli(plugin_site, "run", str(recipe), "--out", str(out), "--device", "cpu")
    configs = [_config(p.parent) for p in out.rglob("config.json")]
    students = [c for c in configs if c.get("loss") == "logit_mse"]
    assert len(students) == 1 and students[0]["student"] == "pooled_mlp"
    assert students[0]["logits"] == "lift"
    import sortkd_cache as sk

    stores = [p.parent for p in out.rglob("zarr.json") if (p.parent / "labels").is_dir()]
    assert len(stores) == 1
    store = sk.open_store(str(stores[0]))
    assert "lift" in store.kinds()
    meta = store.meta
    assert meta.teacher.arch == "sortkd_plugin_example.models:pooled_mlp"
