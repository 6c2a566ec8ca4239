from __future__ import annotations

import dataclasses
import json
import math
from typing import Any

import pytest
import torch

import sortkd_cache.losses as losses
from sortkd_cache.errors import ConfigError
from sortkd_cache.losses import (
    CE,
    CTKD,
    DKD,
    KD,
    LOSS_NAMES,
    LOSSES,
    LSKD,
    CTKDTemperature,
    LossConfig,
    ce_loss,
    compute_loss,
    ctkd_loss,
    dkd_loss,
    kd_loss,
    loss_options,
    lskd_loss,
    make_loss,
    make_temperature_module,
    option_info,
)

pytestmark = pytest.mark.fast

S = [[1.0, 2.0, 0.5, -1.0], [0.0, -1.0, 3.0, 0.5], [2.0, 2.0, 1.0, 0.0]]
T = [[2.0, 1.0, 0.0, 0.5], [0.5, 0.5, 4.0, -2.0], [3.0, 0.0, 1.0, 1.0]]
Y = [1, 2, 0]


def _inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return (
        torch.tensor(S, requires_grad=True),
        torch.tensor(T, dtype=torch.float16),
        torch.tensor(Y),
    )


# ---------------------------------------------------------------- config


def test_defaults_follow_the_papers() -> None:
    assert make_loss("ce").options() == {}
    assert make_loss("kd").options() == {"temperature": 4.0, "ce_weight": 0.1, "kd_weight": 0.9}
    assert make_loss("dkd").options() == {
        "dkd_alpha": 1.0,
        "dkd_beta": 8.0,
        "temperature": 4.0,
        "dkd_warmup": 20,
        "ce_weight": 1.0,
    }
    assert make_loss("lskd").options() == {"temperature": 2.0, "ce_weight": 0.1, "kd_weight": 9.0}
    ctkd = make_loss("ctkd")
    assert isinstance(ctkd, CTKD)
    assert (ctkd.ce_weight, ctkd.kd_weight) == (0.1, 0.9)
    assert (ctkd.ctkd_t_start, ctkd.ctkd_t_range, ctkd.ctkd_init_param) == (1.0, 20.0, 1.0)
    assert (ctkd.ctkd_lambda_min, ctkd.ctkd_lambda_max, ctkd.ctkd_lambda_epochs) == (0.0, 1.0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctkd.ce_weight = 1.0  # type: ignore[misc]


def test_each_loss_is_registered_in_its_own_module() -> None:
    assert LOSSES.names() == list(LOSS_NAMES) == ["ce", "ctkd", "dkd", "kd", "lskd"]
    for name, cls in LOSSES.items():
        assert cls.name == name
        assert cls.__module__ == f"sortkd_cache.losses.{name}"
    assert (LOSSES.get("kd"), LOSSES.get("dkd"), LOSSES.get("lskd")) == (KD, DKD, LSKD)
    assert LOSSES.get("ce") is CE and not CE.needs_teacher


@pytest.mark.parametrize("name", LOSS_NAMES)
def test_round_trip_through_dict_and_json(name: str) -> None:
    infos = option_info(LOSSES.get(name))
    changed = {i.name: (i.default + 1 if i.kind is int else i.default * 0.5 + 0.25) for i in infos}
    cfg = make_loss(name, changed)
    d = cfg.to_dict()
    assert d == {"name": name, **changed}
    again = json.loads(json.dumps(d))
    assert make_loss(again.pop("name"), again) == cfg
    assert LossConfig(name=name, **changed) == cfg  # the old name is a thin alias


def test_int_widens_to_float() -> None:
    cfg = make_loss("lskd", {"temperature": 2})
    assert cfg.options()["temperature"] == 2.0 and isinstance(cfg.options()["temperature"], float)


@pytest.mark.parametrize(
    ("name", "d", "pattern"),
    [
        (
            "kd",
            {"temprature": 4.0},
            r"^temprature = 4\.0 does not apply to loss 'kd' \(its options: ",
        ),
        ("kd", {"dkd_beta": 2.0}, r"^dkd_beta = 2\.0 does not apply to loss 'kd'"),
        (
            "ce",
            {"temperature": 2.0},
            r"^temperature = 2\.0 does not apply to loss 'ce' \(its options: none",
        ),
        ("dkd", {"kd_weight": 1.0}, r"^kd_weight = 1\.0 does not apply to loss 'dkd'"),
        ("ctkd", {"temperature": 1.0}, r"^temperature = 1\.0 does not apply to loss 'ctkd'"),
        (
            "kd",
            {"temperature": "4"},
            r"^temperature \(loss 'kd'\) expects a number, got '4' \(str\)$",
        ),
        ("kd", {"temperature": True}, r"expects a number, got True \(bool\)$"),
        ("dkd", {"dkd_warmup": 20.0}, r"^dkd_warmup \(loss 'dkd'\) expects an integer, got 20\."),
        ("dkd", {"dkd_warmup": -1}, r"^dkd_warmup \(loss 'dkd'\) must be an integer >= 0, got -1"),
        ("fitnet", {}, r"^unknown loss 'fitnet'; known: ce, ctkd, dkd, kd, lskd$"),
        (
            "kd",
            {"temperature": 0},
            r"^temperature \(loss 'kd'\) must be a finite number > 0, got 0\.0$",
        ),
        (
            "lskd",
            {"kd_weight": -0.5},
            r"^kd_weight \(loss 'lskd'\) must be a finite number >= 0, got -0\.5$",
        ),
        (
            "kd",
            {"ce_weight": math.nan},
            r"^ce_weight \(loss 'kd'\) must be a finite number >= 0, got nan$",
        ),
        (
            "ctkd",
            {"ctkd_init_param": math.inf},
            r"ctkd_init_param \(loss 'ctkd'\) must be a finite number >= -10000, got inf$",
        ),
    ],
)
def test_errors_name_option_loss_and_value(name: str, d: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        make_loss(name, d)


def test_spell_names_options_as_the_user_typed_them() -> None:
    with pytest.raises(
        ConfigError,
        match=r"^--dkd-beta = 1\.0 does not apply to loss 'kd' \(its options: "
        r"--temperature, --ce-weight, --kd-weight\)$",
    ):
        make_loss("kd", {"dkd_beta": 1.0}, spell=lambda k: "--" + k.replace("_", "-"))


def test_direct_construction_is_validated() -> None:
    with pytest.raises(
        ConfigError, match=r"temperature \(loss 'lskd'\) must be a finite number > 0, got -2\.0"
    ):
        LSKD(temperature=-2.0)
    with pytest.raises(ConfigError, match=r"^unknown loss 'x'"):
        LossConfig(name="x")


def test_every_option_shows_up_once_in_the_option_table() -> None:
    table = loss_options()
    for name, cls in LOSSES.items():
        for info in option_info(cls):
            assert table[info.name][name] == info
    assert set(table["temperature"]) == {"kd", "dkd", "lskd"}
    assert set(table["ce_weight"]) == {"kd", "dkd", "lskd", "ctkd"}


# ---------------------------------------------------------------- dispatch


@pytest.mark.parametrize("name", LOSS_NAMES)
@pytest.mark.parametrize("epoch", [1, 5])
def test_every_option_changes_the_loss(name: str, epoch: int) -> None:
    """Derived from the registry: a new loss or option is covered without editing this test.

    The value is the loss and, for a learnable temperature, its gradient (CTKD's lambda only
    scales that gradient). Epochs 1 and 5 lie inside the DKD warm-up and the CTKD ramp.
    """

    def value(cfg: Any) -> tuple[float, float]:
        s, t, y = torch.tensor(S, requires_grad=True), torch.tensor(T), torch.tensor(Y)
        module = make_temperature_module(cfg)
        total = compute_loss(cfg, s, t, y, epoch=epoch, temperature_module=module)[0]
        total.backward()
        grad = module.param.grad if module is not None else None
        return total.item(), grad.item() if grad is not None else 0.0

    base = value(make_loss(name))
    for info in option_info(LOSSES.get(name)):
        other = info.default + 3 if info.kind is int else info.default * 0.5 + 0.3
        assert value(make_loss(name, {info.name: other})) != base, info.name


@pytest.mark.parametrize("name", ["ce", "kd", "dkd", "lskd", "ctkd"])
def test_parts_sum_to_total_and_gradient_flows(name: str) -> None:
    cfg = LossConfig(name=name)
    s, t, y = _inputs()
    total, parts = compute_loss(
        cfg, s, t, y, epoch=3, temperature_module=make_temperature_module(cfg)
    )
    assert total.shape == ()
    assert all(isinstance(v, float) for v in parts.values())
    assert sum(parts.values()) == pytest.approx(total.item(), rel=1e-6)
    assert set(parts) == ({"ce"} if name == "ce" else {"ce", "kd"})
    total.backward()
    assert s.grad is not None and torch.isfinite(s.grad).all() and s.grad.abs().sum() > 0


def test_each_loss_combines_its_terms_as_documented() -> None:
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    ce = ce_loss(s, y).item()

    _, parts = compute_loss(LossConfig(name="ce"), s, None, y, epoch=1)
    assert parts == {"ce": pytest.approx(ce)}

    cfg = LossConfig(name="kd", ce_weight=0.3, kd_weight=0.7, temperature=2.0)
    _, parts = compute_loss(cfg, s, t, y, epoch=1)
    assert parts["ce"] == pytest.approx(0.3 * ce)
    assert parts["kd"] == pytest.approx(0.7 * kd_loss(s, t, 2.0).item())

    cfg = LossConfig(name="dkd", dkd_warmup=4, ce_weight=0.5)
    dkd = dkd_loss(s, t, y, 1.0, 8.0, 4.0).item()
    _, parts = compute_loss(cfg, s, t, y, epoch=1)
    assert parts["ce"] == pytest.approx(0.5 * ce)
    assert parts["kd"] == pytest.approx(0.25 * dkd)

    cfg = LossConfig(name="lskd")
    _, parts = compute_loss(cfg, s, t, y, epoch=1)
    assert parts["ce"] == pytest.approx(0.1 * ce)
    assert parts["kd"] == pytest.approx(9.0 * lskd_loss(s, t, 2.0).item())

    cfg = LossConfig(name="ctkd")
    module = make_temperature_module(cfg)
    assert module is not None
    _, parts = compute_loss(cfg, s, t, y, epoch=1, temperature_module=module)
    temp = torch.tensor(module.temperature())
    assert parts["ce"] == pytest.approx(0.1 * ce)
    assert parts["kd"] == pytest.approx(0.9 * ctkd_loss(s, t, temp).item(), rel=1e-5)


def test_dkd_warmup_in_dispatch() -> None:
    cfg = LossConfig(name="dkd")  # warmup 20
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    kd = {e: compute_loss(cfg, s, t, y, epoch=e)[1]["kd"] for e in (1, 10, 20, 21, 100)}
    assert kd[10] == pytest.approx(10 * kd[1], rel=1e-6)
    assert kd[20] == pytest.approx(20 * kd[1], rel=1e-6)
    assert kd[21] == pytest.approx(kd[20], rel=1e-6)
    assert kd[100] == pytest.approx(kd[20], rel=1e-6)
    ce = {e: compute_loss(cfg, s, t, y, epoch=e)[1]["ce"] for e in (1, 100)}
    assert ce[1] == pytest.approx(ce[100])


def test_ctkd_dispatch_reverses_temperature_gradient() -> None:
    cfg = LossConfig(name="ctkd")
    module = make_temperature_module(cfg)
    assert isinstance(module, CTKDTemperature)
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    total, _ = compute_loss(cfg, s, t, y, epoch=10, temperature_module=module)  # lambda = 1
    total.backward()
    assert module.param.grad is not None

    p = torch.tensor(cfg.ctkd_init_param, requires_grad=True)
    plain = cfg.kd_weight * ctkd_loss(s, t, 1.0 + 20.0 * torch.sigmoid(p))
    plain.backward()
    assert p.grad is not None and p.grad.item() != 0.0
    assert module.param.grad.item() == pytest.approx(-p.grad.item(), rel=1e-5)

    # Epochs count from 1: at epoch 1 the reversal strength is small, not zero.
    module.zero_grad()
    total, _ = compute_loss(cfg, s, t, y, epoch=1, temperature_module=module)
    total.backward()
    grad1 = module.param.grad
    assert grad1 is not None
    lam1 = (1 - math.cos(math.pi / 10)) / 2
    assert grad1.item() == pytest.approx(-lam1 * p.grad.item(), rel=1e-5)


def test_make_temperature_module() -> None:
    assert make_temperature_module(LossConfig(name="kd")) is None
    assert make_temperature_module(LossConfig(name="dkd")) is None
    module = make_temperature_module(
        LossConfig(name="ctkd", ctkd_t_start=2.0, ctkd_t_range=4.0, ctkd_init_param=0.0),
        device="cpu",
    )
    assert module is not None
    assert module.temperature() == pytest.approx(4.0)
    assert module.param.device.type == "cpu"


def test_missing_teacher_or_module_and_bad_epoch() -> None:
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    for name in ("kd", "dkd", "lskd", "ctkd"):
        cfg = LossConfig(name=name)
        with pytest.raises(ConfigError, match=rf"loss '{name}' needs teacher logits, got None"):
            compute_loss(cfg, s, None, y, epoch=1, temperature_module=make_temperature_module(cfg))
    with pytest.raises(ConfigError, match=r"loss 'ctkd' needs a temperature module"):
        compute_loss(LossConfig(name="ctkd"), s, t, y, epoch=1)
    with pytest.raises(ConfigError, match=r"epoch must be an integer >= 1.*got 0"):
        compute_loss(LossConfig(), s, t, y, epoch=0)
    with pytest.raises(ConfigError, match=r"epoch must be an integer >= 1.*got 1\.0"):
        compute_loss(LossConfig(), s, t, y, epoch=1.0)  # type: ignore[arg-type]


def test_compute_loss_needs_a_loss() -> None:
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    with pytest.raises(ConfigError, match=r"^compute_loss needs a loss"):
        compute_loss("kd", s, t, y, epoch=1)  # type: ignore[arg-type]


def test_package_exports() -> None:
    for name in losses.__all__:
        assert hasattr(losses, name), name
    assert len(set(losses.__all__)) == len(losses.__all__)
