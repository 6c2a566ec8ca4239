"""Recipes: schema, shipped recipes (paper settings), overrides and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sortkd_cache.errors import ConfigError
from sortkd_cache.pipelines.recipes import (
    Recipe,
    apply_overrides,
    load_recipe,
    recipe_dir,
    recipe_names,
    resolve_recipe_path,
)
from sortkd_cache.testing import one_error_line, run_cli

MINIMAL = """\
[dataset]
spec = "digits"

[teacher]
arch = "digits_mlp"
epochs = 1

[dump]
views = 2

[sort]
methods = ["sort"]

[train]
student = "digits_mlp"
epochs = 1

[[students]]
name = "KD raw"
loss = "kd"

[[students]]
name = "KD sort"
loss = "kd"
logits = "sort"
lr = 0.1
seeds = [4, 5]
"""

CIFAR_PAIRS = {
    "cifar100_resnet32x4_resnet8x4": ("resnet32x4", "resnet8x4", 8.0),
    "cifar100_vgg13_vgg8": ("vgg13", "vgg8", 6.0),
    "cifar100_wrn_40_2_wrn_16_2": ("wrn_40_2", "wrn_16_2", 6.0),
    "cifar100_wrn_40_2_wrn_40_1": ("wrn_40_2", "wrn_40_1", 6.0),
    "cifar100_resnet56_resnet20": ("resnet56", "resnet20", 2.0),
    "cifar100_resnet110_resnet32": ("resnet110", "resnet32", 2.0),
}


def _write(tmp_path: Path, text: str, name: str = "r.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _error(path: Path, overrides: tuple[str, ...] = ()) -> str:
    with pytest.raises(ConfigError) as info:
        load_recipe(str(path), overrides)
    msg = str(info.value)
    assert "\n" not in msg
    assert str(path) in msg
    return msg


# -- the schema -----------------------------------------------------------------------------


def test_minimal_recipe_defaults_and_precedence(tmp_path: Path) -> None:
    r = load_recipe(str(_write(tmp_path, MINIMAL)))
    assert r.name == "r"  # the file's stem
    assert r.seeds == (0,)
    assert r.device == "auto" and r.threads is None
    assert r.dataset.spec == "digits" and r.dataset.download is False
    assert r.teacher.arch == "digits_mlp" and r.teacher.checkpoint is None
    assert r.dump.views == 2 and r.dump.dtype == "float16"
    kd_raw, kd_sort = r.students
    # [train] gives defaults; a variant's own value wins; untouched keys keep the paper's.
    assert kd_raw.student == kd_sort.student == "digits_mlp"
    assert kd_raw.epochs == 1 and kd_raw.lr == 0.05 and kd_sort.lr == 0.1
    assert kd_raw.logits == "raw" and kd_sort.logits == "sort"
    assert kd_raw.seeds == (0,) and kd_sort.seeds == (4, 5)
    assert kd_raw.loss_options == {}  # the loss's paper defaults apply
    assert kd_sort.slug == "kd-sort"
    assert isinstance(kd_sort.lr, float)


def test_int_accepted_for_float_and_dataset_shorthand(tmp_path: Path) -> None:
    text = MINIMAL.replace('[dataset]\nspec = "digits"\n', 'dataset = "digits"\n')
    r = load_recipe(str(_write(tmp_path, text)), ("train.kd.temperature=2",))
    assert r.dataset.spec == "digits"
    temperature = r.students[0].loss_options["temperature"]
    assert temperature == 2.0 and isinstance(temperature, float)


@pytest.mark.parametrize("name", recipe_names())
def test_shipped_recipes_validate_and_round_trip(name: str) -> None:
    r = load_recipe(name)
    assert r.name == name
    again = Recipe.from_dict(json.loads(json.dumps(r.to_dict())), source="copy")
    assert again == r
    assert len({s.slug for s in r.students}) == len(r.students)


def test_shipped_recipes_are_found_by_name_path_and_suffix() -> None:
    path = recipe_dir() / "digits_demo.toml"
    assert resolve_recipe_path("digits_demo") == path
    assert resolve_recipe_path("digits_demo.toml") == path
    assert resolve_recipe_path(str(path)) == path
    assert set(recipe_names()) >= {"digits_demo", *CIFAR_PAIRS, "imagenet_resnet34_resnet18"}
    with pytest.raises(ConfigError, match=r"recipe 'nope' not found.*digits_demo"):
        resolve_recipe_path("nope")


def test_demo_recipe_is_the_documented_experiment() -> None:
    r = load_recipe("digits_demo")
    assert r.dataset.spec == "digits"
    assert r.teacher.arch == "digits_cnn_l" and r.teacher.checkpoint is None
    assert r.teacher.epochs <= 4  # deliberately weak
    assert r.dump.views == 8
    assert set(r.sort.methods) == {"sort", "swap"}
    assert r.seeds == (0, 1, 2)
    combos = {(s.loss, s.logits if s.loss != "ce" else None) for s in r.students}
    assert combos >= {("ce", None), ("kd", "raw"), ("kd", "sort"), ("dkd", "raw"), ("dkd", "sort")}
    assert {s.student for s in r.students} == {"digits_cnn_s"}


@pytest.mark.parametrize("name", sorted(CIFAR_PAIRS))
def test_cifar_recipes_have_the_paper_settings(name: str) -> None:
    teacher, student, beta = CIFAR_PAIRS[name]
    r = load_recipe(name)
    assert r.dataset.spec == "cifar100"
    assert r.teacher.arch == teacher and r.teacher.checkpoint is not None
    by = {(s.loss, s.logits): s for s in r.students}
    assert {("ce", "raw"), ("kd", "raw"), ("kd", "sort"), ("dkd", "raw"), ("dkd", "sort")} <= set(
        by
    )
    for s in r.students:
        assert s.student == student
        assert (s.epochs, s.batch_size, s.lr, s.milestones) == (240, 64, 0.05, (150, 180, 210))
        assert (s.lr_decay, s.weight_decay, s.momentum) == (0.1, 5e-4, 0.9)
    kd, dkd = by[("kd", "sort")], by[("dkd", "sort")]
    assert kd.loss_options == {"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9}
    assert dkd.loss_options == {
        "temperature": 4.0,
        "dkd_alpha": 1.0,
        "dkd_beta": beta,
        "dkd_warmup": 20,
    }  # DKD's CE weight stays at its own default 1.0


def test_imagenet_recipe_settings() -> None:
    r = load_recipe("imagenet_resnet34_resnet18")
    assert r.dataset.spec.startswith("imagefolder:")
    assert r.teacher.arch == "resnet34" and r.teacher.checkpoint is not None
    assert r.dump.augment == "imagenet:224"
    for s in r.students:
        assert s.student == "resnet18"
        assert (s.epochs, s.batch_size, s.lr, s.milestones) == (100, 256, 0.1, (30, 60, 90))
        assert s.weight_decay == 1e-4
    dkd = next(s for s in r.students if s.loss == "dkd")
    o = dkd.loss_options
    assert (o["dkd_beta"], o["dkd_warmup"], o["temperature"]) == (0.5, 1, 1.0)
    assert "ce_weight" not in o  # DKD keeps its own CE weight 1.0
    kd = next(s for s in r.students if s.loss == "kd")
    assert kd.loss_options == {"temperature": 1.0, "ce_weight": 0.5, "kd_weight": 0.5}


# -- overrides ------------------------------------------------------------------------------


def test_overrides_parse_toml_values_else_strings() -> None:
    data: dict[str, Any] = {"dump": {"views": 8}, "dataset": "digits"}
    out = apply_overrides(
        data,
        ["dump.views=4", "seeds=[1, 2]", "teacher.checkpoint=/x/t.pth", "dataset.data_root=d"],
        "f.toml",
    )
    assert out["dump"]["views"] == 4
    assert out["seeds"] == [1, 2]
    assert out["teacher"]["checkpoint"] == "/x/t.pth"
    assert out["dataset"] == {"spec": "digits", "data_root": "d"}
    assert data == {"dump": {"views": 8}, "dataset": "digits"}  # the input is not modified


@pytest.mark.parametrize(
    ("override", "needle"),
    [
        ("students.loss=ce", "cannot address [[students]]"),
        ("novalue", "is not KEY=VALUE"),
        ("dump..views=1", "malformed"),
        ("dump.views.x=1", "'dump.views' is not a table"),
    ],
)
def test_bad_overrides_are_refused(override: str, needle: str) -> None:
    with pytest.raises(ConfigError, match=r"f\.toml") as info:
        apply_overrides({"dump": {"views": 8}}, [override], "f.toml")
    assert needle in str(info.value)


# -- errors name the file, the key and the value --------------------------------------------


@pytest.mark.parametrize(
    ("old", "new", "key", "value"),
    [
        # unknown keys, at every level
        ("[dump]\nviews = 2", "[dump]\nviews = 2\nveiws = 3", "dump.veiws", "3"),
        ("[dataset]\n", "bogus = 1\n[dataset]\n", "bogus", "1"),
        ("lr = 0.1\n", "lr = 0.1\nlearning_rate = 0.2\n", "students[1].learning_rate", "0.2"),
        ("[train]\n", "[train]\ntemp = 9\n", "train.temp", "9"),
        # wrong types
        ("views = 2", 'views = "two"', "dump.views", "'two'"),
        ("epochs = 1\n\n[dump]", "epochs = 1.5\n\n[dump]", "teacher.epochs", "1.5"),
        ("seeds = [4, 5]", "seeds = 4", "students[1].seeds", "4"),
        ('methods = ["sort"]', 'methods = "sort"', "sort.methods", "'sort'"),
        ("lr = 0.1", "lr = true", "students[1].lr", "True"),
        # bad values
        ("views = 2", "views = 0", "dump.views", "0"),
        ('loss = "kd"\nlogits', 'loss = "kdd"\nlogits', "students[1].loss", "'kdd'"),
        ('methods = ["sort"]', "methods = []", "students[1].logits", "'sort'"),
        ('arch = "digits_mlp"', 'arch = "resnet9"', "teacher.arch", "'resnet9'"),
        ("[train]\n", "[train]\nmilestones = [3, 2]\n", "train.milestones", "[3, 2]"),
        ("[train]\n", "[train]\ntemperature = -1\n", "train.temperature", "-1"),
        # loss options: checked by the variant's loss itself
        (
            'loss = "kd"\nlogits',
            'loss = "kd"\ntemperature = -1\nlogits',
            "students[1].temperature",
            "-1",
        ),
        (
            'loss = "kd"\nlogits',
            'loss = "kd"\ndkd_beta = 2.0\nlogits',
            "students[1].dkd_beta",
            "loss 'kd'",
        ),
        (
            'loss = "kd"\n\n',
            'loss = "ce"\ntemperature = 2\n\n',
            "students[0].temperature",
            "loss 'ce'",
        ),
        ("[train]\n", "[train.kd]\ndkd_warmup = 3\n[train]\n", "train.kd.dkd_warmup", "loss 'kd'"),
        ("[train]\n", "[train.fitnet]\nx = 3\n[train]\n", "train.fitnet", "3"),
    ],
)
def test_errors_name_file_key_and_value(
    tmp_path: Path, old: str, new: str, key: str, value: str
) -> None:
    assert old in MINIMAL
    msg = _error(_write(tmp_path, MINIMAL.replace(old, new, 1)))
    assert f"'{key}'" in msg
    assert value in msg


@pytest.mark.parametrize(
    ("old", "new", "key"),
    [
        ('arch = "digits_mlp"\n', "", "teacher.arch"),
        ("views = 2\n", "", "dump.views"),
        ('[dataset]\nspec = "digits"\n', "", "dataset"),
        ('name = "KD raw"\n', "", "students[0].name"),
        ('[train]\nstudent = "digits_mlp"\n', "[train]\n", "students[0].student"),
    ],
)
def test_missing_fields_are_named(tmp_path: Path, old: str, new: str, key: str) -> None:
    assert old in MINIMAL
    msg = _error(_write(tmp_path, MINIMAL.replace(old, new, 1)))
    assert f"'{key}' is missing" in msg and "no value given" in msg


def test_teacher_checkpoint_excludes_training_keys(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL.replace("epochs = 1\n\n[dump]", 'checkpoint = "t.pth"\n[dump]'))
    assert load_recipe(str(path)).teacher.checkpoint == "t.pth"
    text = MINIMAL.replace('arch = "digits_mlp"\n', 'arch = "digits_mlp"\ncheckpoint = "t.pth"\n')
    msg = _error(_write(tmp_path, text))
    assert "'teacher.epochs'" in msg and "t.pth" in msg


def test_duplicate_variant_names_and_invalid_toml(tmp_path: Path) -> None:
    msg = _error(_write(tmp_path, MINIMAL.replace('name = "KD sort"', 'name = "KD raw"')))
    assert "'students.name'" in msg and "KD raw" in msg
    msg = _error(_write(tmp_path, MINIMAL + "[[students]\n", "bad.toml"))
    assert "invalid TOML" in msg


def test_override_errors_name_the_file(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL)
    msg = _error(path, ("dump.views=-3",))
    assert "(with overrides)" in msg and "'dump.views'" in msg and "-3" in msg


_BAD_VALUES = st.one_of(
    st.text(max_size=5).map(repr),
    st.booleans().map(lambda b: "true" if b else "false"),
    st.just("[1, 2]"),
    st.just("{ a = 1 }"),
)


@settings(max_examples=30, deadline=None)
@given(
    key=st.sampled_from(
        ["dump.views", "dump.seed", "teacher.epochs", "train.epochs", "train.batch_size"]
    ),
    value=_BAD_VALUES,
)
def test_any_wrong_type_for_an_integer_key_is_named(key: str, value: str) -> None:
    data = {
        "dataset": {"spec": "digits"},
        "teacher": {"arch": "digits_mlp"},
        "dump": {"views": 2},
        "train": {"student": "digits_mlp"},
        "students": [{"name": "a"}],
    }
    data = apply_overrides(data, [f"{key}={value}"], "p.toml")
    with pytest.raises(ConfigError) as info:
        Recipe.from_dict(data, source="p.toml")
    msg = str(info.value)
    assert msg.startswith("p.toml: ")
    # the variant's value comes from [train], so the error names the [train] key
    assert f"'{key}' expects an integer" in msg


def test_cli_recipe_error_is_one_line_exit_2(tmp_path: Path) -> None:
    path = _write(tmp_path, MINIMAL.replace("views = 2", "views = 2\nviews_per_sample = 4"))
    proc = run_cli("run", str(path), "--dry-run", timeout=120)
    one_error_line(proc, str(path), "'dump.views_per_sample'", "4")
    assert proc.stdout == ""
