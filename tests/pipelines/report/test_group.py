"""Variants and twins of sampled runs, the hybrid kind (``--sample-head``) among them.

The runs are built from ``config.json``-shaped dicts through :func:`options_of`, the path a
real run's config takes; no training is needed to decide how runs group and pair.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from sortkd_cache.options import field_names
from sortkd_cache.pipelines.configs import TrainConfig
from sortkd_cache.pipelines.report._group import _TEACHER, group_runs, pairs_for
from sortkd_cache.pipelines.report._runs import Provenance, Run, options_of

#: every field, as a run's config.json holds them
_DEFAULTS = {
    f.name: f.default
    for f in dataclasses.fields(TrainConfig)
    if f.default is not dataclasses.MISSING
}
_PROV = Provenance("store", "teacher", "data")
_KINDS: dict[str, dict[str, Any]] = {
    "ce": {"loss": "ce"},
    "dense": {"loss": "kd"},
    "sampled": {"loss": "kd", "sample": 8},
    "hybrid": {"loss": "kd", "sample": 8, "sample_head": 2},
}


def _runs() -> list[Run]:
    runs = []
    for seed in (0, 1):
        for name, options in _KINDS.items():
            config = {**_DEFAULTS, **options, "seed": seed}
            runs.append(Run(Path(f"{name}-{seed}"), seed, options_of(config), 50.0, 1.0, (), _PROV))
    return runs


def _names() -> dict[str, str]:
    grouping = group_runs(_runs())
    assert len(grouping.variants) == len(_KINDS)
    return {v.runs[0].path.name.split("-")[0]: v.name for v in grouping.variants}


def test_every_teacher_row_option_is_a_teacher_key() -> None:
    """The keys a CE twin lacks are TrainConfig's teacher-row fields (sample_head too)."""
    assert set(_TEACHER) == {"logits", *field_names(TrainConfig, sweep="teacher")}
    assert "sample_head" in _TEACHER


def test_the_hybrid_variant_stands_apart_and_pairs_with_its_twins() -> None:
    names = _names()
    assert names["hybrid"] != names["sampled"]
    assert "sample_head=2" in names["hybrid"]
    variants = group_runs(_runs()).variants
    pairs = pairs_for(variants, None)
    assert (names["hybrid"], names["ce"]) in pairs
    assert (names["hybrid"], names["dense"]) in pairs
    assert (names["hybrid"], names["sampled"]) not in pairs
    dense = pairs_for(variants, "dense")
    assert dense == [(names["sampled"], names["dense"]), (names["hybrid"], names["dense"])]
    assert all(run.seed in (0, 1) for v in variants for run in v.runs)
