"""A stateless, vectorised, counter-based random generator.

Every random number used by an augmentation is a pure function of four integers,
``(seed, index, view, draw)``: the run's seed, the sample's index in the dataset, the view
number and the draw number within that view. Nothing depends on batch size, batch order,
worker count or process count, so any process can recompute any view's parameters.

Exact construction (all arithmetic on unsigned 64-bit integers, modulo 2**64)::

    G      = 0x9E3779B97F4A7C15                      # the SplitMix64 increment
    mix(z) = z ^= z >> 30; z *= 0xBF58476D1CE4E5B9;  # the SplitMix64 finaliser
             z ^= z >> 27; z *= 0x94D049BB133111EB;
             z ^= z >> 31
    h = mix(seed + G)
    h = mix((h ^ index) + G)
    h = mix((h ^ view)  + G)
    h = mix((h ^ draw)  + G)                         # counter_bits(...) == h
    u = (h >> 11) * 2**-53                           # counter_uniform(...) == u, in [0, 1)

Signed inputs are taken modulo 2**64 (two's complement), so ``-1`` and ``2**64 - 1`` are the
same key. Each absorption step is a bijection of the absorbed word for a fixed state, so two
counters that differ only in one word never collide.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from ..errors import AugmentError

__all__ = ["GOLDEN_GAMMA", "counter_bits", "counter_uniform", "splitmix64"]

_MASK64 = (1 << 64) - 1
GOLDEN_GAMMA = 0x9E3779B97F4A7C15
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_G = np.uint64(GOLDEN_GAMMA)
_S30 = np.uint64(30)
_S27 = np.uint64(27)
_S31 = np.uint64(31)
_S11 = np.uint64(11)

U64Array = npt.NDArray[np.uint64]
#: what a counter word accepts: a Python int, a numpy integer, or an integer array
IntLike = int | np.integer | npt.ArrayLike


def splitmix64(z: U64Array) -> U64Array:
    """The SplitMix64 finaliser applied element-wise (a bijection of uint64)."""
    z = np.asarray(z, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = (z ^ (z >> _S30)) * _M1
        z = (z ^ (z >> _S27)) * _M2
        return z ^ (z >> _S31)


def _as_u64(value: IntLike, what: str) -> U64Array:
    """Any integer or integer array as a uint64 array (modulo 2**64), at least 1-D."""
    if isinstance(value, (bool, np.bool_)):
        raise AugmentError(f"counter {what} must be an integer, got {value!r}")
    if isinstance(value, int):
        return np.array([value & _MASK64], dtype=np.uint64)
    arr = np.asarray(value)
    if arr.dtype.kind == "u":
        return np.atleast_1d(arr.astype(np.uint64))
    if arr.dtype.kind == "i":
        return np.atleast_1d(arr.astype(np.int64).astype(np.uint64))
    raise AugmentError(f"counter {what} must be integers, got dtype {arr.dtype}")


def _shape_of(*values: IntLike) -> tuple[int, ...]:
    shapes = [np.shape(v) for v in values]
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError as exc:
        raise AugmentError(f"counter inputs do not broadcast: shapes {shapes}") from exc


def counter_bits(seed: IntLike, index: IntLike, view: IntLike, draw: IntLike) -> U64Array:
    """64 random bits per element of ``broadcast(seed, index, view, draw)`` (see module doc)."""
    shape = _shape_of(seed, index, view, draw)
    s, i, v, d = np.broadcast_arrays(
        _as_u64(seed, "seed"),
        _as_u64(index, "index"),
        _as_u64(view, "view"),
        _as_u64(draw, "draw"),
    )
    with np.errstate(over="ignore"):
        h = splitmix64(s + _G)
        h = splitmix64((h ^ i) + _G)
        h = splitmix64((h ^ v) + _G)
        h = splitmix64((h ^ d) + _G)
    return h.reshape(shape)


def counter_uniform(
    seed: IntLike, index: IntLike, view: IntLike, draw: IntLike
) -> npt.NDArray[np.float64]:
    """Uniform float64 in [0, 1) per element of ``broadcast(seed, index, view, draw)``.

    The top 53 bits of :func:`counter_bits` scaled by 2**-53, so every value is exact and
    strictly below 1.
    """
    bits = counter_bits(seed, index, view, draw)
    return (bits >> _S11).astype(np.float64) * (2.0**-53)
