"""The quantized soft-label kind (``quant``): every class's logit in B bits.

A quantized row keeps **every class** (unlike top-K and sampled rows, nothing is dropped),
each logit rounded to one of ``L + 1 = 2^B`` evenly spaced levels between the row's maximum
and its minimum:

* ``codes`` [ceil(C·B / 8)] uint8: class ``c``'s code ``k_c`` in ``[0, L]`` occupies bits
  ``c·B .. c·B + B - 1`` of the row's bit string (little-endian within each byte, class 0
  first); the padding bits of the last byte are 0;
* ``stats`` [2] in the store's dtype: ``max`` (the row's maximum, exact) and ``step``
  (``(max - min) / L`` rounded to the dtype).

A class's logit is read back as ``max - step · k_c`` (float32), ``k_c = round((max - z_c) /
step)`` clipped to ``[0, L]``, computed in float64 from the stored (rounded) ``max`` and
``step`` (round half to even), so a row reads back within ``step / 2`` of its logits (and the
row's maximum exactly). Rounding is to the nearest level (deterministic): stochastic rounding,
unbiased per logit, measured worse (docs/sparse.md).

The levels are monotone in the logit, so the rank order of the codes is the rank order of the
values read back: ``sort`` and ``swap`` permute codes (:func:`apply_quant`), exact on the stored
row. A row of C = 100 classes in float16 at B = 3 is 38 + 4 = 42 bytes (top-10: 44).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import apply_with_stats
from sortkd_cache.sparse._spec import DEFAULT_TEMPERATURES, spec_from_record

__all__ = [
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
]

#: the bit widths a quantized kind takes: below 2 a row has two levels, above 8 a code would
#: not fit a byte (and float16 rows are 16 bits)
BITS_RANGE = (2, 8)
_CODE = np.dtype(np.uint8)


def check_bits(bits: object) -> int:
    """``--quantize B`` as an int in :data:`BITS_RANGE`; ConfigError naming it otherwise."""
    if isinstance(bits, bool) or not isinstance(bits, int | np.integer):
        raise ConfigError(f"--quantize must be an integer number of bits, got {bits!r}")
    low, high = BITS_RANGE
    if not low <= bits <= high:
        raise ConfigError(f"--quantize {bits} must be between {low} and {high} bits")
    return int(bits)


@dataclass(frozen=True)
class QuantSpec:
    """Parameters of a quantized kind: B, C, the dtype of ``max`` and ``step``, and the
    temperatures its fidelity is measured at."""

    bits: int
    num_classes: int
    dtype: str = "float16"
    temperatures: tuple[float, ...] = DEFAULT_TEMPERATURES

    def __post_init__(self) -> None:
        check_bits(self.bits)
        if self.dtype not in ("float16", "float32", "float64"):
            raise ConfigError(f"quantized logits dtype {self.dtype!r} is not a float dtype")
        if isinstance(self.num_classes, bool) or self.num_classes < 2:
            raise ConfigError(f"a quantized kind needs 2 or more classes, got {self.num_classes}")
        object.__setattr__(self, "temperatures", tuple(float(t) for t in self.temperatures))

    @property
    def levels(self) -> int:
        """L, the largest code (``2^B - 1``)."""
        return (1 << self.bits) - 1

    @property
    def code_bytes(self) -> int:
        return -(-self.num_classes * self.bits // 8)

    @property
    def num_stats(self) -> int:
        return 2

    @property
    def bytes_per_row(self) -> int:
        """Bytes per sample-view before compression: ceil(C·B / 8) + 2·value."""
        return self.code_bytes + self.num_stats * np.dtype(self.dtype).itemsize

    def describe(self) -> str:
        return f"--quantize {self.bits}"

    def array_widths(self) -> dict[str, tuple[int, str]]:
        """Per array of a kind: (width, dtype); the fidelity array's width is its per-chunk
        record (:func:`quant_fidelity`: the KL per recorded T, the largest error, the rows)."""
        return {
            "codes": (self.code_bytes, str(_CODE)),
            "stats": (self.num_stats, self.dtype),
            "fidelity": (len(self.temperatures) + 2, "float64"),
        }

    def to_dict(self) -> dict[str, Any]:
        return {
            "layout": "quant",
            "bits": self.bits,
            "num_classes": self.num_classes,
            "dtype": self.dtype,
            "temperatures": list(self.temperatures),
            "columns": ["max", "step"],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> QuantSpec:
        return spec_from_record(
            cls,
            d,
            "quantized",
            lambda: cls(
                bits=d["bits"],
                num_classes=d["num_classes"],
                dtype=d["dtype"],
                temperatures=tuple(d["temperatures"]),
            ),
        )


@dataclass(frozen=True)
class QuantRows:
    """Quantized rows (numpy): ``codes`` [..., ceil(C·B/8)] uint8 and ``stats`` [..., 2]."""

    codes: np.ndarray
    stats: np.ndarray

    def __getitem__(self, selection: int | slice | np.ndarray) -> QuantRows:
        return QuantRows(self.codes[selection], self.stats[selection])

    def arrays(self) -> tuple[np.ndarray, ...]:
        return self.codes, self.stats


def _pack(k: NDArray[np.int64], spec: QuantSpec) -> NDArray[np.uint8]:
    n = k.shape[0]
    bits = (k[:, :, None] >> np.arange(spec.bits)) & 1
    flat = np.zeros((n, spec.code_bytes * 8), dtype=np.uint8)
    flat[:, : spec.num_classes * spec.bits] = bits.reshape(n, -1)
    return np.packbits(flat, axis=1, bitorder="little")


def unpack_codes(codes: NDArray[Any], spec: QuantSpec) -> NDArray[np.int64]:
    """The codes [N, C] (int64) of packed rows [N, ceil(C·B/8)]."""
    n = codes.shape[0]
    bits = np.unpackbits(np.asarray(codes, dtype=np.uint8), axis=1, bitorder="little")
    per = bits[:, : spec.num_classes * spec.bits].reshape(n, spec.num_classes, spec.bits)
    out: NDArray[np.int64] = (per.astype(np.int64) << np.arange(spec.bits)).sum(axis=2)
    return out


def quantize_rows(z: NDArray[Any], spec: QuantSpec) -> QuantRows:
    """Dense logits [N, C] as quantized rows (refuses non-finite logits)."""
    zf = np.asarray(z, dtype=np.float64)
    if zf.ndim != 2 or zf.shape[1] != spec.num_classes:
        raise ConfigError(f"quantize_rows expects [N, {spec.num_classes}] logits, got {zf.shape}")
    if not np.isfinite(zf).all():
        raise ConfigError("quantize_rows: a non-finite logit (nan or inf) cannot be quantized")
    dt = np.dtype(spec.dtype)
    mx = zf.max(axis=1).astype(dt)
    step = ((zf.max(axis=1) - zf.min(axis=1)) / spec.levels).astype(dt)
    m64, s64 = mx.astype(np.float64)[:, None], step.astype(np.float64)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        k = np.where(s64 > 0, np.rint((m64 - zf) / s64), 0.0)
    codes = _pack(np.clip(k, 0, spec.levels).astype(np.int64), spec)
    return QuantRows(codes, np.stack([mx, step], axis=1))


def dequantize(rows: QuantRows, spec: QuantSpec) -> NDArray[np.float32]:
    """The logits [N, C] (float32) the rows read back as: ``max - step · code``."""
    k = unpack_codes(rows.codes, spec).astype(np.float32)
    st = np.asarray(rows.stats, dtype=np.float32)
    out: NDArray[np.float32] = st[:, :1] - st[:, 1:2] * k
    return out


def apply_quant(
    method: str, rows: QuantRows, y: NDArray[Any], spec: QuantSpec
) -> tuple[QuantRows, NDArray[np.int64], NDArray[np.int64]]:
    """``(rows after method, the label's rank, the top class)``: the method applied to the
    codes (as ``L - code``: a smaller code is a larger logit, so the rank order is the codes'
    ascending order, ties by the sorting tie rule), which permutes them; ``max`` and ``step``
    are unchanged. The rank counts the classes whose code is strictly smaller than the
    label's (a value strictly larger): a label tied with the row's largest value reads back
    the same after ``sort``, and counts as unchanged."""
    k = unpack_codes(rows.codes, spec)
    yy = np.asarray(y, dtype=np.int64)
    applied = apply_with_stats(method, (spec.levels - k).astype(np.float64), yy)
    moved = spec.levels - np.asarray(applied.out).astype(np.int64)
    own = np.take_along_axis(k, yy[:, None], axis=1)
    rank = (k < own).sum(axis=1).astype(np.int64)
    return QuantRows(_pack(moved, spec), rows.stats.copy()), rank, applied.top


def quant_fidelity(spec: QuantSpec, z: NDArray[Any], rows: QuantRows) -> NDArray[np.float64]:
    """One chunk's sums [T + 2]: ``KL(softmax(z/T) || softmax(zq/T))`` summed over rows at each
    recorded T, the largest ``|z - zq|``, and the rows (``zq``: the rows read back)."""
    zf, zq = np.asarray(z, dtype=np.float64), dequantize(rows, spec).astype(np.float64)
    out = []
    for t in spec.temperatures:
        lp, lq = _log_softmax(zf / t), _log_softmax(zq / t)
        out.append(float(np.maximum((np.exp(lp) * (lp - lq)).sum(axis=1), 0.0).sum()))
    err = float(np.abs(zf - zq).max()) if zf.size else 0.0
    return np.asarray([*out, err, float(zf.shape[0])])


def _log_softmax(x: NDArray[np.float64]) -> NDArray[np.float64]:
    x = x - x.max(axis=1, keepdims=True)
    out: NDArray[np.float64] = x - np.log(np.exp(x).sum(axis=1, keepdims=True))
    return out


def quant_problems(spec: QuantSpec, rows: QuantRows, y: NDArray[Any]) -> list[str]:
    """What is wrong with quantized rows (empty when sound): finite stats, a step >= 0, and
    zero padding bits after the last class's code."""
    out = []
    st = np.asarray(rows.stats, dtype=np.float64)
    bad = ~np.isfinite(st).all(axis=1)
    if bad.any():
        out.append(f"row {int(np.flatnonzero(bad)[0])}: a non-finite max or step")
    neg = np.isfinite(st[:, 1]) & (st[:, 1] < 0)
    if neg.any():
        out.append(f"row {int(np.flatnonzero(neg)[0])}: a negative step")
    pad = spec.code_bytes * 8 - spec.num_classes * spec.bits
    if pad:
        last = np.asarray(rows.codes[:, -1], dtype=np.uint8) >> (8 - pad)
        if last.any():
            out.append(f"row {int(np.flatnonzero(last)[0])}: padding bits set after the last code")
    return out
