"""The training engine: the device-side divergence guard, and stacked = unstacked steps."""

from __future__ import annotations

import pytest
import torch

from sortkd_cache.training import check_stackable, read_epoch

from ._engine import WORLD, adamw, batches, member, sgd, state, train_steps

pytestmark = [pytest.mark.fast, pytest.mark.usefixtures("one_thread")]


def _blow_up(data: list, at: int) -> list:
    """``data`` with batch ``at``'s images NaN: its loss is NaN (BatchNorm would undo any
    finite scale)."""
    batch, rows = data[at]
    data = list(data)
    data[at] = (batch._replace(x=torch.full_like(batch.x, float("nan"))), rows)
    return data


def test_a_failed_member_takes_no_step_after_the_one_that_diverged() -> None:
    data = _blow_up(batches(8), 3)
    m = member("a", 0, loss="ce")
    train_steps([m], data[:3], stacked=False)
    before = state(m)
    train_steps([m], data[3:], stacked=False)  # diverges at once, then 4 sane batches
    after = state(m)
    assert all(torch.equal(before[k], after[k]) for k in before)  # BatchNorm statistics too
    stats = read_epoch([m], WORLD)["a"]
    assert stats.failure is not None and stats.failure.local
    assert stats.failure.step == 3  # three steps were taken before it
    assert stats.failure.loss != stats.failure.loss  # NaN


def test_the_first_reason_stays() -> None:
    data = _blow_up(_blow_up(batches(6), 1), 4)
    m = member("a", 0, loss="ce")
    train_steps([m], data, stacked=False)
    first = read_epoch([m], WORLD)["a"].failure
    assert first is not None and first.step == 1
    m.fail("first")
    m.fail("second")
    assert m.failed == "first"


def test_a_sane_run_is_untouched_by_the_guard() -> None:
    """The guard's gate leaves every bit of a kept step: two runs, one guarded twice over."""
    data = batches(5)
    a, b = member("a", 3), member("b", 3)
    train_steps([a], data, stacked=False)
    train_steps([b], data[:2], stacked=False)
    train_steps([b], data[2:], stacked=False)
    sa, sb = state(a), state(b)
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert read_epoch([a], WORLD)["a"].failure is None


def test_a_stacked_member_that_diverges_stops_alone() -> None:
    """Stacked, one member's huge lr makes it diverge: it stops, the other equals its solo."""
    data = batches(6)
    bad, good = member("bad", 0, optimizer=sgd(lr=1e4)), member("good", 1)
    solo = member("good", 1)
    train_steps([bad, good], data, stacked=True)
    train_steps([solo], data, stacked=False)
    stats = read_epoch([bad, good], WORLD)
    assert stats["bad"].failure is not None and stats["good"].failure is None
    sg, ss = state(good), state(solo)
    assert all(torch.allclose(sg[k].float(), ss[k].float(), atol=1e-4) for k in sg)


def _max_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.mark.parametrize(
    ("optimizer", "student"),
    [
        (sgd(nesterov=True), "digits_mlp"),
        (sgd(nesterov=True), "digits_cnn_s"),
        (adamw(), "digits_mlp"),
    ],
    ids=["sgd-nesterov-mlp", "sgd-nesterov-cnn", "adamw-mlp"],
)
def test_stacked_equals_unstacked(optimizer: object, student: str) -> None:
    """Each stacked member steps with its own torch.optim optimizer: the same class and state
    as unstacked; only the batched forward and backward round differently. (AdamW on
    digits_cnn_s: test_stack_rounding.py, where rounding crosses a ReLU's kink.)"""
    data = batches(10, seed=1)
    grid = list(enumerate(zip((0, 1, 2), ("kd", "ce", "dkd"), strict=True)))
    solo = [member(f"m{i}", s, loss, student, optimizer) for i, (s, loss) in grid]
    stack = [member(f"m{i}", s, loss, student, optimizer) for i, (s, loss) in grid]
    for m in solo:
        train_steps([m], data[:1], stacked=False)
    train_steps(stack, data[:1], stacked=True)
    first = max(_max_difference(state(a), state(b)) for a, b in zip(solo, stack, strict=True))
    assert first <= 1e-5
    for m in solo:
        train_steps([m], data[1:], stacked=False)
    train_steps(stack, data[1:], stacked=True)
    tenth = max(_max_difference(state(a), state(b)) for a, b in zip(solo, stack, strict=True))
    assert tenth <= 1e-4
    for a, b in zip(solo, stack, strict=True):  # each stacked member's own optimizer and state
        assert type(a.optimizer) is type(b.optimizer)
        sa, sb = a.optimizer.state_dict()["state"], b.optimizer.state_dict()["state"]
        assert sa.keys() == sb.keys()


def test_stacking_refuses_a_model_that_draws_random_numbers() -> None:
    m = member("drop", 0)
    m.model.add_module("dropout", torch.nn.Dropout(0.1))
    with pytest.raises(
        Exception, match=r"^--stack on: member 'drop' \(digits_cnn_s\) draws random"
    ):
        check_stackable([m], WORLD)
    check_stackable([member("plain", 0)], WORLD)


def test_stacking_refuses_syncbatchnorm() -> None:
    """SyncBatchNorm (what torchrun on CUDA converts BatchNorm to) cannot run under vmap."""
    m = member("sync", 0)
    torch.nn.SyncBatchNorm.convert_sync_batchnorm(m.model)  # type: ignore[no-untyped-call]
    with pytest.raises(
        Exception, match=r"^--stack on: member 'sync' \(digits_cnn_s\) has BatchNorm"
    ):
        check_stackable([m], WORLD)
