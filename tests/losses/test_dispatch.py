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
    LOSS_NAMES,
    LOSSES,
    CTKDTemperature,
    LossConfig,
    ce_loss,
    compute_loss,
    ctkd_loss,
    dkd_loss,
    kd_loss,
    lskd_loss,
    make_temperature_module,
)

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
    cfg = LossConfig()
    assert cfg.name == "kd"
    assert (cfg.temperature, cfg.ce_weight, cfg.kd_weight) == (4.0, 0.1, 0.9)
    assert (cfg.dkd_alpha, cfg.dkd_beta, cfg.dkd_temperature) == (1.0, 8.0, 4.0)
    assert (cfg.dkd_warmup, cfg.dkd_ce_weight) == (20, 1.0)
    assert (cfg.lskd_temperature, cfg.lskd_ce_weight, cfg.lskd_kd_weight) == (2.0, 0.1, 9.0)
    assert (cfg.ctkd_t_start, cfg.ctkd_t_range, cfg.ctkd_init_param) == (1.0, 20.0, 1.0)
    assert (cfg.ctkd_lambda_min, cfg.ctkd_lambda_max, cfg.ctkd_lambda_epochs) == (0.0, 1.0, 10)
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.name = "ce"  # type: ignore[misc]


def test_round_trip_through_dict_and_json() -> None:
    cfg = LossConfig(name="dkd", dkd_beta=2.0, dkd_warmup=5, temperature=3.5)
    d = cfg.to_dict()
    assert d["name"] == "dkd" and d["dkd_beta"] == 2.0 and d["dkd_warmup"] == 5
    assert set(d) == {f.name for f in dataclasses.fields(LossConfig)}
    assert LossConfig.from_dict(d) == cfg
    assert LossConfig.from_dict(json.loads(json.dumps(d))) == cfg
    assert LossConfig.from_dict({}) == LossConfig()


def test_from_dict_widens_int_to_float() -> None:
    cfg = LossConfig.from_dict({"temperature": 2, "name": "lskd"})
    assert cfg.temperature == 2.0 and isinstance(cfg.temperature, float)


@pytest.mark.parametrize(
    ("d", "pattern"),
    [
        ({"temprature": 4.0}, r"unknown loss config key 'temprature'; known: .*temperature"),
        ({"temperature": "4"}, r"'temperature' must be a number, got '4'"),
        ({"temperature": True}, r"'temperature' must be a number, got True"),
        ({"dkd_warmup": 20.0}, r"'dkd_warmup' must be an integer, got 20\.0"),
        ({"dkd_warmup": -1}, r"'dkd_warmup' must be >= 0, got -1"),
        ({"name": 3}, r"'name' must be a string, got 3"),
        ({"name": "fitnet"}, r"unknown loss 'fitnet'; known: ce, ctkd, dkd, kd, lskd"),
        ({"temperature": 0}, r"'temperature' must be > 0, got 0\.0"),
        ({"kd_weight": -0.5}, r"'kd_weight' must be >= 0, got -0\.5"),
        ({"ce_weight": math.nan}, r"'ce_weight' must be finite, got nan"),
        ({"ctkd_init_param": math.inf}, r"'ctkd_init_param' must be finite, got inf"),
    ],
)
def test_from_dict_errors_name_key_and_value(d: dict[str, Any], pattern: str) -> None:
    with pytest.raises(ConfigError, match=pattern):
        LossConfig.from_dict(d)


def test_from_dict_rejects_non_mapping() -> None:
    with pytest.raises(ConfigError, match=r"must be a mapping, got \['kd'\]"):
        LossConfig.from_dict(["kd"])  # type: ignore[arg-type]


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match=r"unknown loss 'x'; known: ce, ctkd, dkd, kd, lskd"):
        LossConfig(name="x")
    with pytest.raises(ConfigError, match=r"'lskd_temperature' must be > 0, got -2\.0"):
        LossConfig(lskd_temperature=-2.0)


# ---------------------------------------------------------------- dispatch


def test_registry_lists_every_loss() -> None:
    assert sorted(LOSSES) == list(LOSS_NAMES) == ["ce", "ctkd", "dkd", "kd", "lskd"]


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

    cfg = LossConfig(name="dkd", dkd_warmup=4, dkd_ce_weight=0.5)
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


def test_unknown_name_in_dispatch() -> None:
    cfg = LossConfig()
    object.__setattr__(cfg, "name", "x")  # bypass validation to reach the dispatcher's check
    s, t, y = torch.tensor(S), torch.tensor(T), torch.tensor(Y)
    with pytest.raises(ConfigError, match=r"^unknown loss 'x'; known: ce, ctkd, dkd, kd, lskd$"):
        compute_loss(cfg, s, t, y, epoch=1)


def test_package_exports() -> None:
    for name in losses.__all__:
        assert hasattr(losses, name), name
    assert len(set(losses.__all__)) == len(losses.__all__)
