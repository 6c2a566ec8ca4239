"""The example plugin package, installed, used by the commands: ``list`` shows its names with
the package, and ``train``, ``sweep`` and ``run`` take its student and its loss (each command
runs in a subprocess, as a user's shell runs the installed console script)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ..conftest import CLI
from .conftest import PluginSite

PACKAGE = "sortkd-plugin-example"
ONE_EPOCH = ("--epochs", "1", "--milestones", "", "--batch-size", "32", "--device", "cpu")


def _cli(site: PluginSite, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [CLI, *args], env=site.env(), capture_output=True, text=True, timeout=300, check=False
    )
    assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def test_list_shows_the_package_of_each_plugin_name(plugin_site: PluginSite) -> None:
    found = json.loads(_cli(plugin_site, "list", "--json").stdout)
    for kind, names in (("models", plugin_site.entry_points["sortkd_cache.models"]),
                        ("losses", plugin_site.entry_points["sortkd_cache.losses"])):  # fmt: skip
        for name in names:
            assert name in found[kind]["names"]
            assert found[kind]["packages"][name] == PACKAGE
    assert "resnet8" not in found["models"]["packages"]
    text = _cli(plugin_site, "list", "models", "losses").stdout
    assert f"pooled_mlp (from {PACKAGE})" in text and f"logit_mse (from {PACKAGE})" in text


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


def test_sweep_takes_the_plugin_student_and_loss(
    plugin_site: PluginSite, small_store: Path, tmp_path: Path
) -> None:
    out = tmp_path / "sweep"
    _cli(plugin_site, "sweep", "--cache", str(small_store), "--student", "pooled_mlp",
         "--student", "digits_mlp", "--loss", "logit_mse,kd", "--logits", "sort",
         "--seeds", "0", *ONE_EPOCH, "--out", str(out))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    configs = [_config(p.parent) for p in out.glob("*/config.json")]
    pairs = {(c["student"], c["loss"]) for c in configs}
    assert ("pooled_mlp", "logit_mse") in pairs and ("digits_mlp", "kd") in pairs
    assert len(pairs) == 4, summary


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
methods = ["sort"]

[train]
student = "pooled_mlp"
epochs = 1
milestones = []

[[students]]
name = "MSE sort"
loss = "logit_mse"
mse_weight = 0.5
logits = "sort"
"""


@pytest.mark.slow
def test_run_takes_the_plugin_teacher_student_and_loss(
    plugin_site: PluginSite, tmp_path: Path
) -> None:
    recipe = tmp_path / "plugin.toml"
    recipe.write_text(RECIPE)
    out = tmp_path / "out"
    _cli(plugin_site, "run", str(recipe), "--out", str(out), "--device", "cpu")
    configs = [_config(p.parent) for p in out.rglob("config.json")]
    students = [c for c in configs if c.get("loss") == "logit_mse"]
    assert len(students) == 1 and students[0]["student"] == "pooled_mlp"
    import sortkd_cache as sk

    stores = [p.parent for p in out.rglob("zarr.json") if (p.parent / "labels").is_dir()]
    assert len(stores) == 1
    meta = sk.open_store(str(stores[0])).meta
    assert meta.teacher.arch == "sortkd_plugin_example.models:pooled_mlp"
