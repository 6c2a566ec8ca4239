"""The quantized logits layout (``dump --quantize B``, ``copy --quantize B``): per kind a group
of ``codes`` and ``stats`` (:mod:`sortkd_cache.sparse._quant`).

    /logits/<kind>/codes     uint8        [N, V, ceil(C·B/8)]  chunks (S, 1, ceil(C·B/8))
    /logits/<kind>/stats     logits dtype [N, V, 2]            (max, step)
    /logits/<kind>/fidelity  float64      [B, V, T+2]  where the kind was made from dense
                             rows: per (block, view) the sums of KL(dense || quantized) at each
                             recorded T, the largest |logit error|, and the rows
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.sparse import (
    QuantRows,
    QuantSpec,
    apply_quant,
    dequantize,
    quant_fidelity,
    quant_problems,
    quantize_rows,
)
from sortkd_cache.store._logits_layout import LAYOUTS, LayoutStore, Rows
from sortkd_cache.store._rows_group import RowsGroupLayout
from sortkd_cache.store._sparse import sparse_path

if TYPE_CHECKING:
    pass

__all__ = ["QUANT_ARRAYS", "QuantLayout"]

QUANT_ARRAYS = ("codes", "stats", "fidelity")


class QuantLayout(RowsGroupLayout[QuantRows, QuantSpec]):
    """Per kind a group of quantized ``codes`` and ``stats`` (every class, B bits each)."""

    name = "quant"
    arrays = QUANT_ARRAYS[:2]
    word = "quantized"
    rows_type = QuantRows
    spec_type = QuantSpec
    spec: QuantSpec
    check = staticmethod(quant_problems)
    training = "sortkd_cache.data._layouts:QUANT"

    def info_record(self) -> dict[str, Any] | None:
        spec = self.spec
        dense = spec.num_classes * np.dtype(spec.dtype).itemsize
        summary = (
            f"quantized: every one of {spec.num_classes} classes in {spec.bits} bits "
            f"({spec.levels + 1} levels from the row's max to its min): "
            f"{spec.bytes_per_row} B/sample-view (dense {dense}), max and step in {spec.dtype}"
        )
        return {**spec.to_dict(), "bytes_per_sample_view": spec.bytes_per_row, "summary": summary}

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        rows = quantize_rows(dense, self.spec)
        return rows, quant_fidelity(self.spec, dense, rows)

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        sums = np.asarray(store.raw_array(sparse_path(kind, "fidelity"))[...], np.float64)
        return {"fidelity": fidelity_record(self.spec, sums)}

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """The codes moved as the method moves the values they read back as (exact on the
        stored rows; :func:`~sortkd_cache.sparse.apply_quant`)."""
        return apply_quant(method, self._rows(rows), labels, self.spec)

    def read_error(self, rows: Rows) -> np.ndarray:
        """Half a step per row (the nearest level), plus the float32 read-back's rounding."""
        st = np.asarray(self._rows(rows).stats, dtype=np.float64)
        out: np.ndarray = st[:, 1] / 2 + np.abs(st).max(axis=1) * 4 * np.finfo(np.float32).eps
        return out

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        return dequantize(self._rows(rows), self.spec), None


def fidelity_record(spec: QuantSpec, sums: np.ndarray) -> dict[str, Any]:
    """The kind's fidelity attribute from the per-(block, view) sums [B, V, T + 2]."""
    per_view = sums.sum(axis=0)
    worst = sums[..., -2].max(axis=0) if sums.size else np.zeros(0)
    temps = spec.temperatures
    views = [
        {
            "mean_kl": {f"{t:g}": float(row[i] / max(row[-1], 1.0)) for i, t in enumerate(temps)},
            "max_logit_error": float(err),
            "rows": int(row[-1]),
        }
        for row, err in zip(per_view, worst, strict=True)
    ]
    total = per_view.sum(axis=0) if per_view.size else np.zeros(len(temps) + 2)
    n = max(float(total[-1]), 1.0)
    kl = {f"{t:g}": float(total[i] / n) for i, t in enumerate(temps)}
    err = float(worst.max()) if worst.size else 0.0
    shown = ", ".join(f"T={t} {v:.3g}" for t, v in kl.items())
    return {
        "summary": (
            f"quantized fidelity: mean KL(dense || quantized) {shown}; largest logit error "
            f"{err:.3g}"
        ),
        "layout": "quant",
        "bits": spec.bits,
        "bytes_per_sample_view": spec.bytes_per_row,
        "kl": "KL(dense || quantized) per recorded temperature",
        "mean_kl": kl,
        "max_logit_error": err if math.isfinite(err) else None,
        "rows": int(total[-1]),
        "per_view": views,
    }


LAYOUTS.add(QuantLayout.name, QuantLayout)
