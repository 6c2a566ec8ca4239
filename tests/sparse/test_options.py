"""The sparse kind's options, shared by dump, copy and train (moved down from the
pipelines): temperatures parsed and bounded, the spec a ``--topk`` or ``--sample`` makes."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from sortkd_cache.errors import ConfigError
from sortkd_cache.options import flag
from sortkd_cache.sparse import (
    DEFAULT_PROPOSAL,
    DEFAULT_TEMPERATURES,
    TEMPERATURE_RANGE,
    check_sample_options,
    parse_temperatures,
    sampled_spec_for,
    sparse_spec_for,
)


def test_temperatures_parse_and_bad_ones_are_named() -> None:
    assert parse_temperatures(None) == parse_temperatures("") == DEFAULT_TEMPERATURES
    assert parse_temperatures("1,2.5,4") == (1.0, 2.5, 4.0)
    high = TEMPERATURE_RANGE[1] * 2
    for text, words in (("1,x", "numbers"), (f"1,{high:g}", f"got {high!r}"),
                        ("nan", "got nan"), ("2,2", "twice")):  # fmt: skip
        with pytest.raises(ConfigError, match=words):
            parse_temperatures(text, "--t")


def test_the_specs_a_sparse_option_makes() -> None:
    spec = sparse_spec_for(3, 10, "float16", "1,2")
    assert (spec.k, spec.num_classes, spec.dtype, spec.temperatures) == (3, 10, "float16", (1, 2))
    with pytest.raises(ConfigError):
        sparse_spec_for(11, 10, "float16", None)
    sampled = sampled_spec_for(8, 100, "float32", None, seed=5, head=2)
    assert (sampled.draws, sampled.head, sampled.seed) == (8, 2, 5)
    assert sampled.proposal == DEFAULT_PROPOSAL
    assert sampled_spec_for(8, 100, "float32", 2.0, seed=5).head == 0


def test_sample_options_exclude_topk() -> None:
    both = SimpleNamespace(sample=8, topk=3, proposal_temperature=None, sample_head=None)
    with pytest.raises(ConfigError, match="--sample and --topk exclude each other"):
        check_sample_options(both, flag)
    check_sample_options(SimpleNamespace(**{**vars(both), "topk": None}), flag)
