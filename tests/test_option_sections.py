"""A configuration built from sections (issue 29, item 5): ``TrainConfig`` is declared in
sections that say how a sweep's members take their options, fields that differ say so
themselves, and every list of option names (what a sweep shares, what a resume may change,
what a recipe may set and always hashes) is read from the fields. Flat fields, flat CLI."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import pytest

from sortkd_cache.cli.main import all_commands
from sortkd_cache.options import SWEEP_ROLES, Section, field_names, opt, opt_of
from sortkd_cache.pipelines import sweep as sweep_stage
from sortkd_cache.pipelines.configs import DumpConfig, TrainConfig
from sortkd_cache.pipelines.train import RUNTIME_KEYS, recipe_keys
from sortkd_cache.testing import invoke


@dataclass(frozen=True, kw_only=True)
class Loop(Section, section="loop", sweep="shared"):
    epochs: int = opt(3, "epochs", ge=1)
    lr: float = opt(0.1, "lr", gt=0, sweep="member", hashed=True)


@dataclass(frozen=True, kw_only=True)
class Where(Section, section="where", sweep="sweep"):
    out: str = opt(help="where", runtime=True)


@dataclass(frozen=True, kw_only=True)
class Throwaway(Where, Loop):
    pass


def test_a_throwaway_configuration_of_sections() -> None:
    assert [f.name for f in dataclasses.fields(Throwaway)] == ["epochs", "lr", "out"]
    assert dataclasses.asdict(Throwaway(out="o", lr=0.2)) == {"epochs": 3, "lr": 0.2, "out": "o"}
    sections = {f.name: opt_of(f).section for f in dataclasses.fields(Throwaway)}
    assert sections == {"epochs": "loop", "lr": "loop", "out": "where"}
    assert field_names(Throwaway, sweep="shared") == ("epochs",)  # the section's role
    assert field_names(Throwaway, sweep="member") == ("lr",)  # the field's own
    assert field_names(Throwaway, sweep="sweep") == ("out",)
    assert field_names(Throwaway, hashed=True) == ("lr",)
    assert field_names(Throwaway, runtime=True) == ("out",)


def test_a_section_field_needs_opt() -> None:
    with pytest.raises(TypeError, match=r"Bad\.x: declare a section's field with opt\(\)"):

        @dataclass(frozen=True, kw_only=True)
        class Bad(Section, section="bad"):
            x: int = 3


def test_field_names_refuses_an_unknown_attribute() -> None:
    with pytest.raises(TypeError, match="Opt has no attribute 'sweeps'"):
        field_names(Throwaway, sweeps="shared")


def test_every_train_field_has_a_section_and_a_role() -> None:
    for f in dataclasses.fields(TrainConfig):
        info = opt_of(f)
        assert info.section in (
            "schedule", "student", "data", "teacher rows", "streaming", "runtime", "output",
        ), f.name  # fmt: skip
        assert (info.sweep or "member") in SWEEP_ROLES, f.name


def test_the_lists_are_read_from_the_fields() -> None:
    """What the hand lists said before the sections (pinned here, in any order)."""
    assert set(sweep_stage.SHARED_KEYS) == {
        "cache", "dataset", "data_root", "download", "batch_size", "data_seed", "views_order",
        "epochs", "stop_after", "device", "data_path", "workers", "eval_batch_size",
        "num_classes", "storage_options",
    }  # fmt: skip
    assert sweep_stage.READER_KEYS == ("soft_labels", "stream_window", "stream_lanes")
    # sample_head and quantize came later, in the teacher rows section: the section made them
    # teacher keys
    assert set(sweep_stage.TEACHER_KEYS) == {*sweep_stage.READER_KEYS, "topk", "sample",
                                             "sample_head", "quantize", "sparse_tail"}  # fmt: skip
    assert set(sweep_stage.SWEEP_KEYS) == {"out", "resume", "overwrite", "progress"}
    assert set(field_names(TrainConfig, hashed=True)) == {
        "student", "loss", "logits", "views_order", "epochs", "batch_size", "lr", "milestones",
        "lr_decay", "weight_decay", "momentum",
    }  # fmt: skip
    assert set(field_names(DumpConfig, hashed=True)) == {
        "views", "seed", "augment", "dtype", "batch_size", "chunk_samples",
    }  # fmt: skip
    assert RUNTIME_KEYS == set(field_names(TrainConfig, runtime=True)) >= {"device", "out"}
    assert "lr" in recipe_keys() and "device" not in recipe_keys()


def _sweep_flags() -> set[str]:
    sweep = all_commands()["sweep"]
    return {o for p in sweep.params for o in getattr(p, "opts", ())}


def test_sweep_offers_what_a_member_takes() -> None:
    """Every train option a member takes is a sweep option; a solo one is not (an unknown
    option there: exit 2); the grid's and the sweep's own (``--student``, ``--out``) are
    declared by the sweep's own fields (SweepGrid, SweepConfig)."""
    flags = _sweep_flags()
    for f in dataclasses.fields(TrainConfig):
        info = opt_of(f)
        role = info.sweep or "member"
        if not info.cli or info.hidden or role in ("grid", "sweep"):
            continue
        flag = (info.names or ("--" + f.name.replace("_", "-"),))[0].split("/")[0]
        assert (flag in flags) == (role != "solo"), f.name
    result = invoke("sweep", "--online-teacher", "x")
    assert result.exit_code == 2 and "No such option" in result.output
