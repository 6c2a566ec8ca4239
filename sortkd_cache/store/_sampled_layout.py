"""The sampled logits layout (``dump --sample S``, ``copy --sample S``): per kind a group of
``ids``, ``counts``, ``values``, ``up`` and ``stats`` (:mod:`sortkd_cache.sparse._sampled`).

    /logits/<kind>/ids       uint8|uint16|int32 [N, V, H+W]  chunks (S, 1, H+W)
    /logits/<kind>/counts    uint8              [N, V, W]    W = min(S, C - H)
    /logits/<kind>/values    logits dtype       [N, V, H+W]  (H = --sample-head, default 0)
    /logits/<kind>/up        as ids             [N, V, W]
    /logits/<kind>/stats     logits dtype       [N, V, P]  (columns in the record)
    /logits/<kind>/fidelity  float64            [B, V, 5]  where the kind was made from dense
                             rows: per (block, view) the sums of KL(sampled || dense) at T0,
                             of the dense and sampled KD gradients' dot product and squared
                             norms (a uniform held student), and the rows
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import numpy as np

from sortkd_cache.errors import ConfigError
from sortkd_cache.sparse import (
    COUNT_DTYPE,
    FIDELITY_SUMS,
    SAMPLED_TAILS,
    SampledRows,
    SampledSpec,
    fidelity_sums,
    relabel,
    sample_rows,
    sampled_problems,
)
from sortkd_cache.store._logits_layout import LAYOUTS, LayoutStore, Rows
from sortkd_cache.store._rows_group import RowsGroupLayout
from sortkd_cache.store._sparse import sparse_path

if TYPE_CHECKING:
    pass

__all__ = ["SAMPLED_ARRAYS", "SampledLayout"]

SAMPLED_ARRAYS = ("ids", "counts", "values", "up", "stats", "fidelity")


class SampledLayout(RowsGroupLayout[SampledRows, SampledSpec]):
    """Per kind a group of sampled ``ids``, ``counts``, ``values``, ``up`` and ``stats``."""

    name = "sample"
    arrays = SAMPLED_ARRAYS[:5]
    word = "sampled"
    rows_type = SampledRows
    spec_type = SampledSpec
    spec: SampledSpec
    check = staticmethod(sampled_problems)
    training = "sortkd_cache.data._layouts:SAMPLE"
    tails = SAMPLED_TAILS

    def info_record(self) -> dict[str, Any] | None:
        spec, temps = self.spec, ",".join(f"{t:g}" for t in self.spec.temperatures)
        dense = spec.num_classes * np.dtype(spec.dtype).itemsize
        head = f"top {spec.head} exact + " if spec.head else ""
        summary = (
            f"sampled: {head}{spec.draws} draws of {spec.num_classes} at T0={spec.proposal:g}: "
            f"{spec.bytes_per_row} B/sample-view (dense {dense}), ids {spec.id_dtype}, "
            f"counts {COUNT_DTYPE}, exact normalisers at T={temps}"
        )
        return {
            **spec.to_dict(),
            "bytes_per_sample_view": spec.bytes_per_row,
            "summary": summary,
            "rank_cap": 1,  # the largest label rank a sort of these rows records ("or more")
        }

    def check_loss(self, loss: str) -> None:
        if loss == "ctkd":
            raise ConfigError(
                "--loss ctkd cannot train from a sampled store: its learnt temperature has no "
                "recorded normaliser for the importance weights; use kd, dkd or lskd"
            )

    def encode(
        self, dense: np.ndarray, labels: np.ndarray, *, at: tuple[int, int] = (0, 0)
    ) -> tuple[Rows, np.ndarray | None]:
        """S draws per row, keyed by (seed, sample index, view) from ``at`` = (first sample,
        view), with the chunk's fidelity sums."""
        start, view = at
        index = np.arange(start, start + dense.shape[0], dtype=np.int64)
        rows = sample_rows(dense, labels, self.spec, index, view)
        return rows, fidelity_sums(self.spec, dense, rows)

    def finish_attrs(self, store: LayoutStore, kind: str) -> dict[str, Any]:
        sums = np.asarray(store.raw_array(sparse_path(kind, "fidelity"))[...], np.float64)
        return {"fidelity": fidelity_record(self.spec, sums)}

    def sort_rows(
        self, method: str, rows: Rows, labels: np.ndarray
    ) -> tuple[Rows, np.ndarray, np.ndarray]:
        """The draws moved as the method moves their values (exact; a method without a form
        on sampled rows is refused). The label's rank is 0 where its logit is the maximum and
        1 (for 1 or more) elsewhere; the top class is the highest-ranked drawn class."""
        r = self._rows(rows)
        out = relabel(method, r, labels, self.spec)
        label, mx = self.spec.column("label"), self.spec.column("max")
        ranks = (r.stats[:, label] < r.stats[:, mx]).astype(np.int64)
        return out, ranks, r.ids[:, 0].astype(np.int64)

    def kept(self, rows: Rows) -> tuple[np.ndarray, np.ndarray | None]:
        r = self._rows(rows)
        return r.values, r.ids.astype(np.int64)


def fidelity_record(spec: SampledSpec, sums: np.ndarray) -> dict[str, Any]:
    """The kind's fidelity attribute from the per-(block, view) sums [B, V, 5]."""
    per_view = sums.sum(axis=0)
    views = []
    for kl, dot, dd, ss, n in per_view:
        cos = dot / math.sqrt(dd * ss) if dd > 0 and ss > 0 else 1.0
        angle = math.degrees(math.acos(max(-1.0, min(1.0, cos))))
        views.append({"mean_kl": kl / max(n, 1.0), "grad_angle_deg": angle, "rows": int(n)})
    total = per_view.sum(axis=0)
    cos = total[1] / math.sqrt(total[2] * total[3]) if total[2] > 0 and total[3] > 0 else 1.0
    kl = float(total[0] / max(total[4], 1.0))
    angle = math.degrees(math.acos(max(-1.0, min(1.0, float(cos)))))
    return {
        "summary": (
            f"sampled fidelity: mean KL(sampled || dense) at T0={spec.proposal:g} {kl:.3g}; "
            f"KD gradient angle to dense {angle:.1f} deg (uniform held student, every row)"
        ),
        "layout": "sample",
        "draws": spec.draws,
        **({"head": spec.head} if spec.head else {}),
        "proposal_temperature": spec.proposal,
        "bytes_per_sample_view": spec.bytes_per_row,
        "kl": "KL(sampled || dense) at the proposal temperature",
        "mean_kl": kl,
        "grad_angle_deg": angle,
        "rows": int(total[4]),
        "per_view": views,
        "sums": list(FIDELITY_SUMS),
    }


LAYOUTS.add(SampledLayout.name, SampledLayout)
