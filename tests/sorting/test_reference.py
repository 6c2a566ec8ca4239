"""The sorting kernels against the reference cases (DESIGN: "The sorting mechanism (exact)").

The cases live in ``../shared/reference/sort_cases.npz`` beside the checkout, read from there
whenever it is present; ``tests/data/sort_cases.npz`` is a copy for clones without it (a test
checks that the two are equal). ``SORTKD_SORT_CASES`` overrides both. Every output is compared
bit for bit, on numpy, torch CPU and (where present) CUDA.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from sortkd_cache.errors import ConfigError
from sortkd_cache.sorting import (
    METHODS,
    _numpy,
    apply_with_stats,
    get_method,
    label_rank,
    sort_logits,
    swap_logits,
)
from sortkd_cache.sorting import _torch as torch_kernels

pytestmark = pytest.mark.fast

REPO = Path(__file__).resolve().parents[2]
SHARED_CASES = REPO.parent / "shared" / "reference" / "sort_cases.npz"
COPY_CASES = REPO / "tests" / "data" / "sort_cases.npz"
_CANDIDATES = [os.environ.get("SORTKD_SORT_CASES", ""), str(SHARED_CASES), str(COPY_CASES)]
CASES_PATH = next((Path(p) for p in _CANDIDATES if p and Path(p).is_file()), None)
CASES: dict[str, np.ndarray[Any, Any]] = dict(np.load(CASES_PATH)) if CASES_PATH else {}
NAMES = sorted({k.rsplit("_", 1)[0] for k in CASES})

if CASES_PATH is None:  # never skip silently: the reference is part of the contract
    raise FileNotFoundError("sort_cases.npz not found (../shared/reference/ or tests/data/)")

UINT = {
    np.dtype(np.float16): np.uint16,
    np.dtype(np.float32): np.uint32,
    np.dtype(np.float64): np.uint64,
}


def bits(a: np.ndarray[Any, Any] | torch.Tensor) -> np.ndarray[Any, Any]:
    arr = a.detach().cpu().numpy() if isinstance(a, torch.Tensor) else a
    out: np.ndarray[Any, Any] = arr.view(UINT[arr.dtype])
    return out


def run(method: str, backend: str, z: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> Any:
    """One method on one backend; returns a numpy array."""
    publics: dict[str, Any] = {"sort": sort_logits, "swap": swap_logits}
    publics["label_rank"] = label_rank
    public = publics[method]
    if backend == "numpy":
        return public(z, y)
    zt, yt = torch.from_numpy(z), torch.from_numpy(y)
    if backend == "torch":
        return public(zt, yt).numpy()
    # The torch kernels themselves (the public API routes CPU tensors to numpy's).
    return getattr(torch_kernels, f"{method}_2d")(zt, yt).numpy()


def total_key(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """An int64 key whose order is IEEE-754 totalOrder (written apart from the kernels')."""
    b = bits(z).astype(np.int64)
    sign = np.int64(1) << np.int64(8 * z.itemsize - 1)
    key: np.ndarray[Any, Any] = np.where(b >= sign, sign - 1 - b, b)  # sign set: reversed
    return key


def both_zeros(z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    """Rows holding both -0.0 and +0.0."""
    b = bits(z)
    neg_zero = b.dtype.type(1 << (8 * z.itemsize - 1))
    has: np.ndarray[Any, Any] = (b == 0).any(axis=1) & (b == neg_zero).any(axis=1)
    return has


@pytest.mark.skipif(not SHARED_CASES.is_file(), reason="no ../shared beside the checkout")
def test_the_copy_equals_the_shared_reference() -> None:
    shared, copy = np.load(SHARED_CASES), np.load(COPY_CASES)
    assert sorted(shared.files) == sorted(copy.files)
    for key in shared.files:
        a, b = shared[key], copy[key]
        assert a.dtype == b.dtype and a.shape == b.shape, key
        assert a.tobytes() == b.tobytes(), f"tests/data/sort_cases.npz differs in {key}"


def test_the_cases_cover_the_design() -> None:
    dtypes = {str(CASES[f"{n}_logits"].dtype) for n in NAMES}
    classes = {CASES[f"{n}_logits"].shape[1] for n in NAMES}
    assert dtypes == {"float16", "float32"}
    assert classes == {10, 100, 1000}
    for n in NAMES:
        z, y = CASES[f"{n}_logits"], CASES[f"{n}_labels"]
        assert y.shape == z.shape[:1]
        assert CASES[f"{n}_sort"].shape == CASES[f"{n}_swap"].shape == z.shape
        assert not np.isnan(z).any()
        # many ties: most rows repeat some value
        sz = np.sort(z, axis=1)
        assert (sz[:, 1:] == sz[:, :-1]).any(axis=1).mean() > 0.5
    assert all(both_zeros(CASES[f"{n}_logits"]).any() for n in NAMES)


INF = float("inf")
EDGE_ROWS = [  # (row, label, sort, swap), worked out by hand from the DESIGN rule
    ([1.5, 1.5, 1.5, 1.5], 2, [1.5, 1.5, 1.5, 1.5], [1.5, 1.5, 1.5, 1.5]),
    ([-0.0, -0.0, -0.0], 1, [-0.0, -0.0, -0.0], [-0.0, -0.0, -0.0]),
    (
        [-INF, 3.0, INF, INF, -0.0, 0.0],
        4,
        [-INF, 0.0, INF, 3.0, INF, -0.0],
        [-INF, 3.0, -0.0, INF, INF, 0.0],
    ),
    ([-INF, -INF, 5.0, -0.0], 1, [-INF, 5.0, -0.0, -INF], [-INF, 5.0, -INF, -0.0]),
    ([0.0, -0.0, 0.0, -0.0], 3, [0.0, -0.0, -0.0, 0.0], [-0.0, -0.0, 0.0, 0.0]),
]


@pytest.mark.parametrize("backend", ["numpy", "torch", "torch_kernel"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
@pytest.mark.parametrize("case", range(len(EDGE_ROWS)))
def test_infinities_signed_zeros_and_equal_rows(case: int, dtype: Any, backend: str) -> None:
    row, label, expected_sort, expected_swap = EDGE_ROWS[case]
    z = np.array([row], dtype)
    y = np.array([label])
    for method, expected in (("sort", expected_sort), ("swap", expected_swap)):
        out = run(method, backend, z, y)
        want = np.array([expected], dtype)
        assert out.tobytes() == want.tobytes(), (method, out, want)


@pytest.mark.parametrize("backend", ["numpy", "torch", "torch_kernel"])
@pytest.mark.parametrize("name", NAMES)
def test_sort_matches_reference(name: str, backend: str) -> None:
    z, y, e = CASES[f"{name}_logits"], CASES[f"{name}_labels"], CASES[f"{name}_sort"]
    out = run("sort", backend, z, y)
    assert out.dtype == z.dtype
    np.testing.assert_array_equal(bits(out), bits(e))  # every case, bit for bit
    np.testing.assert_array_equal(np.sort(out, axis=1), np.sort(z, axis=1))  # multiset by value


@pytest.mark.parametrize("name", NAMES)
def test_outputs_are_bitwise_permutations_and_apply_with_stats_agrees(name: str) -> None:
    z, y, e = CASES[f"{name}_logits"], CASES[f"{name}_labels"], CASES[f"{name}_sort"]
    for method in ("sort", "swap"):
        expected = CASES[f"{name}_{method}"]
        same = np.sort(bits(z), axis=1) == np.sort(bits(expected), axis=1)
        assert same.all(), f"{name}_{method} is not a bitwise permutation of its rows"
        applied = apply_with_stats(method, z, y)
        np.testing.assert_array_equal(bits(applied.out), bits(expected))
        np.testing.assert_array_equal(applied.rank, label_rank(z, y))
        # top: the first index holding the row maximum, the value sort gives the label
        top = (bits(z) == bits(e[np.arange(len(y)), y])[:, None]).argmax(axis=1)
        np.testing.assert_array_equal(applied.top, top)


@pytest.mark.parametrize("backend", ["numpy", "torch", "torch_kernel"])
@pytest.mark.parametrize("name", NAMES)
def test_swap_matches_reference(name: str, backend: str) -> None:
    z, y, e = CASES[f"{name}_logits"], CASES[f"{name}_labels"], CASES[f"{name}_swap"]
    out = run("swap", backend, z, y)
    assert out.dtype == z.dtype
    np.testing.assert_array_equal(bits(out), bits(e))


@pytest.mark.parametrize("backend", ["numpy", "torch", "torch_kernel"])
@pytest.mark.parametrize("name", NAMES)
def test_label_rank_counts_classes_above_the_label(name: str, backend: str) -> None:
    z, y = CASES[f"{name}_logits"], CASES[f"{name}_labels"]
    k = total_key(z)
    ky = k[np.arange(len(y)), y][:, None]
    idx = np.arange(z.shape[1])[None, :]
    expected = ((k > ky) | ((k == ky) & (idx < y[:, None]))).sum(axis=1)
    rank = run("label_rank", backend, z, y)
    assert rank.dtype == np.int64
    np.testing.assert_array_equal(rank, expected)
    # rank 0: sort leaves the row's bits in place
    e = CASES[f"{name}_sort"]
    assert (bits(e) == bits(z)).all(axis=1)[rank == 0].all()
    moved = rank > 0
    assert moved.any() and (rank == 0).any()
    rows = np.flatnonzero(moved)
    assert (e[rows, y[rows]] == z[rows].max(axis=1)).all()


@pytest.mark.parametrize("name", NAMES)
def test_leading_shapes_give_the_same_rows(name: str) -> None:
    z, y = CASES[f"{name}_logits"], CASES[f"{name}_labels"]
    n, c = z.shape
    assert n % 2 == 0
    z3, y3 = z.reshape(2, n // 2, c), y.reshape(2, n // 2)
    for method in ("sort", "swap"):
        flat = METHODS[method](z, y)
        for zz, yy in ((z3, y3), (torch.from_numpy(z3), torch.from_numpy(y3))):
            out = METHODS[method](zz, yy)
            assert tuple(out.shape) == (2, n // 2, c)
            np.testing.assert_array_equal(bits(out).reshape(n, c), bits(flat))
    np.testing.assert_array_equal(label_rank(z3, y3), label_rank(z, y).reshape(2, n // 2))
    # a single row with a python int label
    row = sort_logits(z[5], int(y[5]))
    assert row.shape == (c,)
    np.testing.assert_array_equal(bits(row), bits(sort_logits(z, y)[5]))
    rank5 = label_rank(z[5], int(y[5]))
    assert isinstance(rank5, np.ndarray) and rank5.shape == ()


@pytest.mark.parametrize("method", ["sort", "swap"])
def test_inputs_are_not_modified(method: str) -> None:
    name = NAMES[1]
    z, y = CASES[f"{name}_logits"].copy(), CASES[f"{name}_labels"].copy()
    z0, y0 = z.copy(), y.copy()
    METHODS[method](z, y)
    label_rank(z, y)
    np.testing.assert_array_equal(bits(z), bits(z0))
    np.testing.assert_array_equal(y, y0)
    zt, yt = torch.from_numpy(z.copy()), torch.from_numpy(y.copy())
    for fn in (METHODS[method], getattr(torch_kernels, f"{method}_2d")):
        out = fn(zt, yt)
        assert out.data_ptr() != zt.data_ptr()
        np.testing.assert_array_equal(bits(zt), bits(z0))
        np.testing.assert_array_equal(yt.numpy(), y0)


NP_DTYPES = [np.float16, np.float32, np.float64]
TORCH_DTYPES = [torch.float16, torch.bfloat16, torch.float32, torch.float64]


@pytest.mark.parametrize("method", ["sort", "swap"])
def test_type_dtype_and_shape_are_preserved(method: str) -> None:
    fn = METHODS[method]
    rng = np.random.default_rng(0)
    base = rng.integers(-4, 5, (3, 4, 7)).astype(np.float64)
    y = rng.integers(0, 7, (3, 4))
    for np_dtype in NP_DTYPES:
        out = fn(base.astype(np_dtype), y)
        assert isinstance(out, np.ndarray) and out.dtype == np_dtype and out.shape == base.shape
        np.testing.assert_array_equal(out.astype(np.float64), fn(base, y))
    for t_dtype in TORCH_DTYPES:
        zt = torch.from_numpy(base).to(t_dtype)
        for yy in (torch.from_numpy(y).to(torch.int32), y.astype(np.uint8)):
            out_t = fn(zt, yy)
            assert isinstance(out_t, torch.Tensor)
            assert out_t.dtype == t_dtype and out_t.shape == zt.shape and out_t.device == zt.device
            np.testing.assert_array_equal(out_t.double().numpy(), fn(base, y))
    rank_t = label_rank(torch.from_numpy(base), torch.from_numpy(y))
    assert isinstance(rank_t, torch.Tensor) and rank_t.dtype == torch.int64
    assert rank_t.shape == (3, 4)


def test_unusual_layouts() -> None:
    rng = np.random.default_rng(1)
    z = rng.integers(-3, 4, (6, 9)).astype(np.float32)
    y = rng.integers(0, 9, 6)
    expected = sort_logits(z, y)
    z_t = np.asfortranarray(z)  # non C-contiguous
    np.testing.assert_array_equal(sort_logits(z_t, y), expected)
    z_big = z.astype(">f4")  # non-native byte order: same dtype out
    out = sort_logits(z_big, y)
    assert out.dtype == np.dtype(">f4")
    np.testing.assert_array_equal(out.astype(np.float32), expected)
    zt = torch.from_numpy(z).t().contiguous().t()  # strided tensor
    np.testing.assert_array_equal(sort_logits(zt, torch.from_numpy(y)).numpy(), expected)
    zg = torch.from_numpy(z).requires_grad_(True)
    assert not sort_logits(zg, torch.from_numpy(y)).requires_grad
    empty = sort_logits(np.zeros((0, 5), np.float16), np.zeros(0, np.int64))
    assert empty.shape == (0, 5) and empty.dtype == np.float16
    assert label_rank(torch.zeros(0, 5), torch.zeros(0, dtype=torch.long)).shape == (0,)


def test_documented_examples() -> None:
    # ties: equal logits rank lower index first
    z = np.array([1.0, 3.0, 3.0, 2.0], np.float32)
    np.testing.assert_array_equal(sort_logits(z, 3), [1.0, 3.0, 2.0, 3.0])
    np.testing.assert_array_equal(swap_logits(z, 3), [1.0, 2.0, 3.0, 3.0])
    assert int(label_rank(z, 3)) == 2
    assert int(label_rank(z, 1)) == 0 and int(label_rank(z, 2)) == 1
    # classes ranked below the label keep their values
    z = np.array([5.0, 0.5, 4.0, 1.0, 3.0], np.float32)
    np.testing.assert_array_equal(sort_logits(z, 4), [4.0, 0.5, 3.0, 1.0, 5.0])
    # totalOrder: -0.0 ranks below +0.0, and the output is a bitwise permutation
    z = np.array([-0.0, 0.0, 2.0], np.float16)
    np.testing.assert_array_equal(bits(sort_logits(z, 2)), bits(z))
    assert int(label_rank(z, 2)) == 0 and int(label_rank(z, 0)) == 2
    out = sort_logits(z, 0)
    np.testing.assert_array_equal(bits(out), bits(np.array([2.0, -0.0, 0.0], np.float16)))
    out = swap_logits(z, 0)
    np.testing.assert_array_equal(bits(out), bits(np.array([2.0, 0.0, -0.0], np.float16)))


def test_bad_labels_raise_config_error_naming_label_and_position() -> None:
    z = np.zeros((2, 3, 5), np.float32)
    y = np.zeros((2, 3), np.int64)
    y[1, 2] = 7
    for zz, yy in ((z, y), (torch.from_numpy(z), torch.from_numpy(y))):
        for fn in (sort_logits, swap_logits, label_rank):
            with pytest.raises(ConfigError, match=r"label 7 at position \(1, 2\) .*\[0, 5\)"):
                fn(zz, yy)
    with pytest.raises(ConfigError, match=r"label -1 at position 0 "):
        sort_logits(np.zeros((2, 5), np.float16), np.array([-1, 0]))
    with pytest.raises(ConfigError, match=r"^label 5 is out of range \[0, 5\)$"):
        sort_logits(np.zeros(5, np.float16), 5)
    with pytest.raises(ValueError):  # ConfigError is a ValueError
        swap_logits(torch.zeros(5), 9)


def test_bad_shapes_types_and_dtypes_raise_config_error() -> None:
    z = np.zeros((4, 5), np.float32)
    with pytest.raises(ConfigError, match=r"labels shape \(5,\) .* leading shape \(4,\)"):
        sort_logits(z, np.zeros(5, np.int64))
    with pytest.raises(ConfigError, match="leading shape"):
        sort_logits(torch.from_numpy(z), torch.zeros(4, 1, dtype=torch.long))
    with pytest.raises(ConfigError, match="leading shape"):
        sort_logits(z, 1)
    with pytest.raises(ConfigError, match="labels must be integers; got dtype float"):
        sort_logits(z, np.zeros(4))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="labels must be integers"):
        sort_logits(torch.from_numpy(z), torch.zeros(4))
    with pytest.raises(ConfigError, match="labels must be integers; got bool"):
        sort_logits(z[0], True)
    with pytest.raises(ConfigError, match="unsupported logits dtype int32"):
        sort_logits(np.zeros((4, 5), np.int32), np.zeros(4, np.int64))
    with pytest.raises(ConfigError, match="unsupported logits dtype int64"):
        swap_logits(torch.zeros(4, 5, dtype=torch.long), torch.zeros(4, dtype=torch.long))
    with pytest.raises(ConfigError, match="class axis"):
        sort_logits(np.array(1.0, np.float32), 0)
    with pytest.raises(ConfigError, match="numpy array or a torch tensor; got list"):
        sort_logits([[1.0, 2.0]], [0])  # type: ignore[call-overload]


def test_methods_registry() -> None:
    assert list(METHODS) == ["sort", "swap"]
    assert (
        get_method("sort").kernel is _numpy.sort_2d and get_method("swap").kernel is _numpy.swap_2d
    )
    with pytest.raises(ConfigError, match=r"^unknown method 'x'; known: sort, swap$"):
        get_method("x")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", NAMES)
def test_cuda_equals_cpu_bitwise(name: str) -> None:
    z, y = CASES[f"{name}_logits"], CASES[f"{name}_labels"]
    zc, yc = torch.from_numpy(z).cuda(), torch.from_numpy(y).cuda()
    for method in ("sort", "swap"):
        out = METHODS[method](zc, yc)
        assert out.device.type == "cuda" and out.dtype == zc.dtype
        np.testing.assert_array_equal(bits(out), bits(METHODS[method](z, y)))
    rank = label_rank(zc, yc)
    assert rank.device.type == "cuda"
    np.testing.assert_array_equal(rank.cpu().numpy(), label_rank(z, y))
    # bfloat16 on CUDA equals the CPU torch kernels
    zb = torch.from_numpy(z).to(torch.bfloat16)
    for method in ("sort", "swap"):
        cpu = getattr(torch_kernels, f"{method}_2d")(zb, torch.from_numpy(y))
        gpu = METHODS[method](zb.cuda(), yc).cpu()
        assert torch.equal(gpu.view(torch.int16), cpu.view(torch.int16))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_random_ties_and_zeros_equal_cpu_bitwise() -> None:
    rng = np.random.default_rng(7)
    pool = np.array([0.0, -0.0, 1.0, -1.0, 2.5, -3.0, float("inf"), float("-inf")])
    previous = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)  # the kernels must run under it too
    try:
        for c in (2, 7, 1000):
            for t_dtype in TORCH_DTYPES:
                z = torch.from_numpy(pool[rng.integers(0, pool.size, (3, 50, c))]).to(t_dtype)
                y = torch.from_numpy(rng.integers(0, c, (3, 50)))
                for method in ("sort", "swap"):
                    cpu = getattr(torch_kernels, f"{method}_2d")(z.reshape(-1, c), y.reshape(-1))
                    gpu = METHODS[method](z.cuda(), y.cuda())
                    assert gpu.shape == z.shape and gpu.device.type == "cuda"
                    as_int = {2: torch.int16, 4: torch.int32, 8: torch.int64}[z.element_size()]
                    bits_cpu = cpu.view(as_int)
                    bits_gpu = gpu.cpu().reshape(-1, c).view(as_int)
                    assert torch.equal(bits_gpu, bits_cpu), (c, t_dtype, method)
                rank = label_rank(z.cuda(), y.cuda()).cpu()
                assert torch.equal(
                    rank.reshape(-1), torch_kernels.label_rank_2d(z.reshape(-1, c), y.reshape(-1))
                )
    finally:
        torch.use_deterministic_algorithms(previous)
