"""`sortkd-cache sweep`'s member options are train's, generated from TrainConfig's fields."""

from __future__ import annotations

import dataclasses

from sortkd_cache.cli._cmd_sweep import sweep_command
from sortkd_cache.cli._cmd_train import train_command
from sortkd_cache.options import opt_of
from sortkd_cache.pipelines.configs import TrainConfig

#: train's fields that a sweep sets itself (the grid, --out and what to do with it) or that do
#: not apply to a member (a sweep trains from its cache)
OWN = {"student", "out", "loss", "logits", "seed", "resume", "overwrite", "progress"}
NOT_A_MEMBER = {"augment", "online_teacher", "teacher_ckpt", "teacher_init"}


def _params(command: object) -> dict[str, object]:
    return {p.name: p for p in getattr(command, "params")}  # noqa: B009


def test_every_train_option_of_one_student_is_a_member_option() -> None:
    sweep, train = _params(sweep_command), _params(train_command)
    fields = {f.name for f in dataclasses.fields(TrainConfig) if opt_of(f).cli}
    for name in sorted(fields - OWN - NOT_A_MEMBER):
        assert name in sweep, name
        if name not in ("cache", "data_seed"):  # --cache is required; data_seed defaults to 0
            s, t = sweep[name], train[name]
            assert (s.opts, s.help, s.default) == (t.opts, t.help, t.default), name  # type: ignore[attr-defined]
    assert not (NOT_A_MEMBER & set(sweep))
    for name in train:  # the loss options too
        assert name in sweep or name in NOT_A_MEMBER | OWN | {"config_file"}, name
