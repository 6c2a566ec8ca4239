"""Sparse (top-K) soft labels: the format, exact sort/swap, tail masses and rebuilt rows.

    from sortkd_cache.sparse import SparseSpec, compress, apply_sparse
    from sortkd_cache.losses import SparseTeacher, compute_loss
    spec = SparseSpec(k=10, num_classes=100, dtype="float16")
    rows = compress(z, y, spec)                 # z [N, C] dense logits, y [N] labels
    sorted_rows = apply_sparse("sort", rows, y) # exact on every kept entry
    teacher = SparseTeacher.from_rows(spec, sorted_rows)
    loss, parts = compute_loss(cfg, student_logits, teacher, target, epoch=1)

Names load lazily (the format and the store need no torch). See :mod:`._spec` for the
layout, :mod:`._methods` for why sort/swap are exact, and :mod:`._rebuild` for what the
losses get exactly and the bound on the rest. The losses read sparse rows as they read dense
ones (:mod:`sortkd_cache.losses`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sortkd_cache.sparse._check import row_problems
    from sortkd_cache.sparse._compress import compress, order_key, rank_order
    from sortkd_cache.sparse._fidelity import FidelityAccumulator, chunk_sums, kl_rows
    from sortkd_cache.sparse._methods import apply_sparse, label_positions
    from sortkd_cache.sparse._options import (
        FORMATS,
        TEMPERATURE_RANGE,
        check_quantize_options,
        check_sample_options,
        parse_temperatures,
        quant_spec_for,
        sampled_spec_for,
        sparse_spec_for,
        spec_of_record,
    )
    from sortkd_cache.sparse._quant import (
        BITS_RANGE,
        QuantRows,
        QuantSpec,
        apply_quant,
        check_bits,
        dequantize,
        quant_fidelity,
        quant_problems,
        quantize_rows,
        unpack_codes,
    )
    from sortkd_cache.sparse._rebuild import log_rest, rebuild_dense, tail_mass
    from sortkd_cache.sparse._sampled import (
        FIDELITY_SUMS,
        SampledRows,
        estimate,
        fidelity_sums,
        relabel,
        sample_rows,
        sampled_problems,
        used_slots,
    )
    from sortkd_cache.sparse._sampled_spec import (
        COUNT_DTYPE,
        DEFAULT_PROPOSAL,
        SampledSpec,
        check_draws,
        check_head,
        check_proposal,
    )
    from sortkd_cache.sparse._spec import (
        DEFAULT_LSKD_TEMPERATURES,
        DEFAULT_SAMPLED_TAIL,
        DEFAULT_TAIL,
        DEFAULT_TEMPERATURES,
        SAMPLED_TAILS,
        TAILS,
        SparseRows,
        SparseSpec,
        check_topk,
        id_dtype,
    )

_LAZY = {
    "FORMATS": "_options",
    "check_quantize_options": "_options",
    "quant_spec_for": "_options",
    "spec_of_record": "_options",
    "BITS_RANGE": "_quant",
    "QuantRows": "_quant",
    "QuantSpec": "_quant",
    "apply_quant": "_quant",
    "check_bits": "_quant",
    "dequantize": "_quant",
    "quant_fidelity": "_quant",
    "quant_problems": "_quant",
    "quantize_rows": "_quant",
    "unpack_codes": "_quant",
    "TEMPERATURE_RANGE": "_options",
    "check_sample_options": "_options",
    "parse_temperatures": "_options",
    "sampled_spec_for": "_options",
    "sparse_spec_for": "_options",
    "COUNT_DTYPE": "_sampled_spec",
    "FIDELITY_SUMS": "_sampled",
    "fidelity_sums": "_sampled",
    "sampled_problems": "_sampled",
    "DEFAULT_PROPOSAL": "_sampled_spec",
    "SampledRows": "_sampled",
    "SampledSpec": "_sampled_spec",
    "check_draws": "_sampled_spec",
    "check_head": "_sampled_spec",
    "check_proposal": "_sampled_spec",
    "estimate": "_sampled",
    "used_slots": "_sampled",
    "relabel": "_sampled",
    "sample_rows": "_sampled",
    "DEFAULT_LSKD_TEMPERATURES": "_spec",
    "DEFAULT_TAIL": "_spec",
    "DEFAULT_TEMPERATURES": "_spec",
    "TAILS": "_spec",
    "SAMPLED_TAILS": "_spec",
    "DEFAULT_SAMPLED_TAIL": "_spec",
    "FidelityAccumulator": "_fidelity",
    "SparseRows": "_spec",
    "SparseSpec": "_spec",
    "apply_sparse": "_methods",
    "check_topk": "_spec",
    "chunk_sums": "_fidelity",
    "compress": "_compress",
    "id_dtype": "_spec",
    "kl_rows": "_fidelity",
    "label_positions": "_methods",
    "log_rest": "_rebuild",
    "order_key": "_compress",
    "rank_order": "_compress",
    "rebuild_dense": "_rebuild",
    "row_problems": "_check",
    "tail_mass": "_rebuild",
}

__all__ = [
    "FORMATS",
    "check_quantize_options",
    "quant_spec_for",
    "spec_of_record",
    "BITS_RANGE",
    "QuantRows",
    "QuantSpec",
    "apply_quant",
    "check_bits",
    "dequantize",
    "quant_fidelity",
    "quant_problems",
    "quantize_rows",
    "unpack_codes",
    "TEMPERATURE_RANGE",
    "check_sample_options",
    "parse_temperatures",
    "sampled_spec_for",
    "sparse_spec_for",
    "COUNT_DTYPE",
    "FIDELITY_SUMS",
    "fidelity_sums",
    "sampled_problems",
    "DEFAULT_PROPOSAL",
    "SampledRows",
    "SampledSpec",
    "check_draws",
    "check_head",
    "check_proposal",
    "estimate",
    "used_slots",
    "relabel",
    "sample_rows",
    "DEFAULT_LSKD_TEMPERATURES",
    "DEFAULT_TAIL",
    "DEFAULT_TEMPERATURES",
    "TAILS",
    "SAMPLED_TAILS",
    "DEFAULT_SAMPLED_TAIL",
    "FidelityAccumulator",
    "SparseRows",
    "SparseSpec",
    "apply_sparse",
    "check_topk",
    "chunk_sums",
    "compress",
    "id_dtype",
    "kl_rows",
    "label_positions",
    "log_rest",
    "order_key",
    "rank_order",
    "rebuild_dense",
    "row_problems",
    "tail_mass",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'sortkd_cache.sparse' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"sortkd_cache.sparse.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
