"""Your own models and losses: ``module:callable`` architectures, and names that an installed
package registers through entry points (the example package in examples/), used by the
Python API and listed with the package they came from."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch

from sortkd_cache.errors import ConfigError, ModelError
from sortkd_cache.losses import LOSSES, compute_loss, make_loss
from sortkd_cache.models import MODELS, create_model, model_exists
from sortkd_cache.sorting import LOGIT_KINDS, METHODS, get_method
from sortkd_cache.testing import invoke

from .conftest import EXAMPLE, PluginSite, write_distribution

PACKAGE = "sortkd-plugin-example"


def test_the_registries_read_the_installed_package(installed: PluginSite) -> None:
    torch.set_num_threads(1)
    assert "pooled_mlp" in MODELS.names() and "logit_mse" in LOSSES.names()
    assert "lift" in METHODS.names() and "lift" in LOGIT_KINDS
    assert "sortkd_plugin_example.models" not in sys.modules  # names come from metadata
    assert MODELS.origin("pooled_mlp") == PACKAGE and MODELS.origin("resnet8") is None
    model = create_model("pooled_mlp", num_classes=7, in_chans=1)
    assert model(torch.zeros(2, 1, 8, 8)).shape == (2, 7)
    assert MODELS.get("pooled_mlp").family == PACKAGE
    loss = make_loss("logit_mse", {"mse_weight": 0.5})
    assert type(loss) is LOSSES.get("logit_mse") and loss.to_dict()["mse_weight"] == 0.5
    student, teacher, target = torch.randn(4, 3), torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    total, parts = compute_loss(loss, student, teacher, target, epoch=1)
    ce = torch.nn.functional.cross_entropy(student, target)
    torch.testing.assert_close(total, 0.1 * ce + 0.5 * ((student - teacher) ** 2).mean())
    assert set(parts) == {"ce", "kd"}
    method = get_method("lift")
    assert METHODS.origin("lift") == PACKAGE and method.summary
    z, y = torch.randn(3, 4), torch.tensor([0, 3, 1])
    lifted = method(z, y)
    assert torch.equal(lifted[torch.arange(3), y], z.max(dim=1).values)


def test_without_the_package_its_names_are_unknown() -> None:
    assert "pooled_mlp" not in MODELS and "logit_mse" not in LOSSES.names()
    with pytest.raises(ModelError, match="unknown model 'pooled_mlp'"):
        create_model("pooled_mlp", 10)


def test_module_callable_builds_the_users_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.syspath_prepend(str(EXAMPLE / "src"))
    name = "sortkd_plugin_example.models:pooled_mlp"
    assert model_exists(name)
    model = create_model(name, num_classes=5, in_chans=3)
    assert model(torch.zeros(1, 3, 16, 16)).shape == (1, 5)


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("no_such_pkg.models:net", "cannot import module 'no_such_pkg.models'"),
        ("json:no_such_attr", "module 'json' has no 'no_such_attr'"),
        ("math:pi", "is a float, not a callable"),
        ("json:dumps", "cannot be called as fn(num_classes=C, in_chans=K)"),
        ("collections:OrderedDict", "returned a OrderedDict, not a torch.nn.Module"),
    ],
)
def test_module_callable_failures_are_one_line_exit_2(
    name: str, message: str, tmp_path: Path
) -> None:

    args = ["train", "--dataset", "digits", "--loss", "ce", "--student", name, "--epochs", "1"]
    result = invoke(*args, "--milestones", "", "--out", str(tmp_path / "r"))
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines() if result.stderr_bytes else []
    lines = lines or result.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and name in lines[0], lines


def _site(tmp_path: Path, name: str, groups: dict[str, dict[str, str]]) -> str:
    site = tmp_path / name
    write_distribution(site, name, "1.0", groups)
    return str(site)


def test_a_wrong_entry_point_is_refused_naming_its_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    saved = MODELS.snapshot(), LOSSES.snapshot()
    groups = {
        "sortkd_cache.models": {"bad_signature": "json:dumps", "gone": "no_such_pkg:net"},
        "sortkd_cache.losses": {"not_a_loss": "json:dumps"},
    }
    monkeypatch.syspath_prepend(_site(tmp_path, "pkg-a", groups))
    try:
        with pytest.raises(ModelError, match="'bad_signature' of package 'pkg-a' cannot be called"):
            create_model("bad_signature", 10)
        with pytest.raises(ModelError, match=r"'gone' of package 'pkg-a' .*cannot be loaded"):
            create_model("gone", 10)
        with pytest.raises(ConfigError, match="'not_a_loss' of package 'pkg-a' is not a Loss"):
            make_loss("not_a_loss")
        other = {"sortkd_cache.models": {"bad_signature": "json:loads"}}
        monkeypatch.syspath_prepend(_site(tmp_path, "pkg-b", other))
        with pytest.raises(ModelError, match="registered by several packages: pkg-b, pkg-a"):
            create_model("bad_signature", 10)
    finally:
        MODELS.restore(saved[0])
        LOSSES.restore(saved[1])


def test_a_built_in_name_wins_over_a_package_of_the_same_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    groups = {"sortkd_cache.models": {"resnet8": "sortkd_plugin_example.models:pooled_mlp"}}
    monkeypatch.syspath_prepend(_site(tmp_path, "shadow", groups))
    assert MODELS.origin("resnet8") is None and MODELS.names().count("resnet8") == 1
    assert MODELS.get("resnet8").family != "shadow"


DATASET_PLUGIN = """
import dataclasses

from sortkd_cache.datasets import DATASETS, DatasetKind

# the embedded digits under another name, as a package would register its own data
HALF_DIGITS = dataclasses.replace(DATASETS.get("digits"), name="half_digits", grammar="half_digits")
NOT_A_KIND = "half_digits"
"""


def test_a_package_registers_a_dataset(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sortkd_cache.datasets import DATASETS, load_dataset, parse_dataset_spec
    from sortkd_cache.errors import DatasetError

    saved = DATASETS.snapshot()
    groups = {"sortkd_cache.datasets": {"half_digits": "mydata:HALF_DIGITS",
                                        "broken": "mydata:NOT_A_KIND"}}  # fmt: skip
    site = _site(tmp_path, "mydata-pkg", groups)
    (Path(site) / "mydata.py").write_text(DATASET_PLUGIN)
    monkeypatch.syspath_prepend(site)
    try:
        assert DATASETS.origin("half_digits") == "mydata-pkg"
        assert parse_dataset_spec("half_digits").name == "half_digits"
        mine, digits = load_dataset("half_digits", "test"), load_dataset("digits", "test")
        assert len(mine) == len(digits) and mine.info.num_classes == digits.info.num_classes
        with pytest.raises(DatasetError, match="'broken' of package 'mydata-pkg' is not a"):
            parse_dataset_spec("broken")
    finally:
        DATASETS.restore(saved)
        sys.modules.pop("mydata", None)
