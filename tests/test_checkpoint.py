from __future__ import annotations

import argparse
import hashlib
import os
import re
import tempfile
from pathlib import Path

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors import safe_open

from sortkd_cache.checkpoint import file_sha256, load_state_dict, load_weights, save_weights
from sortkd_cache.errors import CheckpointError, SortKDError
from sortkd_cache.models import create_model


class Payload:
    """A custom class: unpickling it would run arbitrary code paths."""

    def __init__(self) -> None:
        self.value = 42


def make(arch: str = "resnet8", seed: int = 0, num_classes: int = 10) -> nn.Module:
    torch.manual_seed(seed)
    return create_model(arch, num_classes=num_classes)


def same_state(a: nn.Module, b: nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def assert_one_line_naming(exc: pytest.ExceptionInfo[CheckpointError], path: Path) -> str:
    message = str(exc.value)
    assert "\n" not in message
    assert repr(str(path)) in message
    assert isinstance(exc.value, SortKDError)
    assert isinstance(exc.value, ValueError)
    return message


# --- file_sha256 -----------------------------------------------------------------------------


def test_file_sha256_streams_large_files(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 12345)
    path = tmp_path / "blob.bin"
    path.write_bytes(data)
    assert file_sha256(path) == hashlib.sha256(data).hexdigest()
    assert file_sha256(str(path)) == hashlib.sha256(data).hexdigest()
    empty = tmp_path / "empty"
    empty.write_bytes(b"")
    assert file_sha256(empty) == hashlib.sha256(b"").hexdigest()


def test_file_sha256_missing_file(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="cannot read"):
        file_sha256(tmp_path / "nope.bin")


# --- round trips ------------------------------------------------------------------------------


def test_safetensors_round_trip(tmp_path: Path) -> None:
    source, target = make(seed=0), make(seed=1)
    assert not same_state(source, target)
    path = tmp_path / "resnet8.safetensors"
    digest = save_weights(source, path)
    assert digest == file_sha256(path)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert load_weights(target, path, "resnet8") == digest
    assert same_state(source, target)
    assert [p.name for p in tmp_path.iterdir()] == ["resnet8.safetensors"]  # no temp files left


def test_pt_round_trip_and_wrappers(tmp_path: Path) -> None:
    source = make(seed=0)
    state = source.state_dict()
    variants = {
        "bare.pt": state,
        "nested_state_dict.pth": {"state_dict": state, "epoch": 240},
        "nested_model.pth": {"model": state, "accuracy": torch.tensor(75.3), "epoch": 3},
        "nested_msd.pt": {"model_state_dict": state, "optimizer": {"lr": 0.1}},
        "ddp.pt": {"state_dict": {f"module.{k}": v for k, v in state.items()}},
        "compiled.pt": {f"_orig_mod.{k}": v for k, v in state.items()},
    }
    for name, content in variants.items():
        path = tmp_path / name
        torch.save(content, path)
        target = make(seed=1)
        assert load_weights(target, path, "resnet8") == file_sha256(path)
        assert same_state(source, target), name


def test_load_state_dict_returns_cpu_tensors(tmp_path: Path) -> None:
    path = tmp_path / "w.safetensors"
    save_weights({"a": torch.arange(6.0).reshape(2, 3), "b": torch.tensor([1, 2])}, path)
    state = load_state_dict(path)
    assert set(state) == {"a", "b"}
    assert torch.equal(state["a"], torch.arange(6.0).reshape(2, 3))
    assert state["b"].dtype == torch.int64
    assert all(t.device.type == "cpu" for t in state.values())


def test_only_a_prefix_on_every_key_is_stripped(tmp_path: Path) -> None:
    path = tmp_path / "mixed.pt"
    torch.save({"module.a": torch.ones(1), "b": torch.zeros(1)}, path)
    assert set(load_state_dict(path)) == {"module.a", "b"}


def test_save_handles_shared_and_non_contiguous_tensors(tmp_path: Path) -> None:
    base = torch.arange(12.0).reshape(3, 4)
    state = {"w": base, "tied": base, "row": base[1], "t": base.t(), "strided": base[:, ::2]}
    path = tmp_path / "shared.safetensors"
    save_weights(state, path)
    loaded = load_state_dict(path)
    for key, value in state.items():
        assert torch.equal(loaded[key], value), key
        assert loaded[key].is_contiguous()


def test_save_tied_module_weights(tmp_path: Path) -> None:
    model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    model[1].weight = model[0].weight  # tied parameters share storage
    path = tmp_path / "tied.safetensors"
    save_weights(model, path)
    other = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4))
    load_weights(other, path, "tied")
    assert torch.equal(other[1].weight, model[0].weight)


def test_save_is_safetensors_whatever_the_suffix(tmp_path: Path) -> None:
    source = make(seed=0)
    path = tmp_path / "weights.pt"
    save_weights(source, path)
    with safe_open(str(path), framework="pt") as fh:
        assert "fc.weight" in set(fh.keys())
    target = make(seed=1)
    load_weights(target, path, "resnet8")
    assert same_state(source, target)


def test_save_overwrites_atomically_and_creates_parents(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "m.safetensors"
    first = save_weights({"a": torch.zeros(3)}, path)
    second = save_weights({"a": torch.ones(3)}, path)
    assert first != second == file_sha256(path)
    assert torch.equal(load_state_dict(path)["a"], torch.ones(3))
    assert sorted(p.name for p in path.parent.iterdir()) == ["m.safetensors"]


def test_save_metadata(tmp_path: Path) -> None:
    path = tmp_path / "m.safetensors"
    save_weights(make(), path, metadata={"arch": "resnet8"})
    with safe_open(str(path), framework="pt") as fh:
        assert fh.metadata() == {"arch": "resnet8"}


def test_save_refuses_non_tensors_and_leaves_nothing(tmp_path: Path) -> None:
    path = tmp_path / "bad.safetensors"
    with pytest.raises(CheckpointError, match="'epoch'"):
        save_weights({"w": torch.ones(2), "epoch": 3}, path)  # type: ignore[dict-item]
    with pytest.raises(CheckpointError, match="list"):
        save_weights([torch.ones(2)], path)  # type: ignore[arg-type]
    assert list(tmp_path.iterdir()) == []


def test_save_into_unwritable_place(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_bytes(b"x")
    with pytest.raises(CheckpointError, match="cannot save weights"):
        save_weights({"a": torch.ones(1)}, blocker / "m.safetensors")


@settings(max_examples=30, deadline=None)
@given(
    st.dictionaries(
        keys=st.text(alphabet="abcdefghij._", min_size=1, max_size=12),
        values=st.tuples(
            st.sampled_from(
                [torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool]
            ),
            st.lists(st.integers(0, 4), min_size=0, max_size=3),
            st.integers(0, 2**31 - 1),
        ),
        min_size=1,
        max_size=5,
    )
)
def test_round_trip_property(spec: dict[str, tuple[torch.dtype, list[int], int]]) -> None:
    state: dict[str, torch.Tensor] = {}
    for key, (dtype, shape, seed) in spec.items():
        gen = torch.Generator().manual_seed(seed)
        state[key] = (torch.randn(shape, generator=gen) * 50).to(dtype)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "p.safetensors"
        digest = save_weights(state, path)
        assert digest == file_sha256(path)
        loaded = load_state_dict(path)
    assert loaded.keys() == state.keys()
    for key, value in state.items():
        assert loaded[key].dtype == value.dtype
        assert loaded[key].shape == value.shape
        assert torch.equal(loaded[key], value)


# --- refusals ---------------------------------------------------------------------------------


def test_missing_file_refused(tmp_path: Path) -> None:
    path = tmp_path / "absent.pt"
    with pytest.raises(CheckpointError, match="not found") as exc:
        load_state_dict(path)
    assert_one_line_naming(exc, path)
    with pytest.raises(CheckpointError, match="not found"):
        load_weights(make(), path, "resnet8")


def test_directory_refused(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError, match="is not a file"):
        load_state_dict(tmp_path)


def test_pickled_custom_object_refused(tmp_path: Path) -> None:
    path = tmp_path / "unsafe.pt"
    torch.save({"state_dict": make().state_dict(), "payload": Payload()}, path)
    with pytest.raises(CheckpointError, match="arbitrary objects") as exc:
        load_state_dict(path)
    message = assert_one_line_naming(exc, path)
    assert "Payload" in message


def test_pickled_namespace_refused(tmp_path: Path) -> None:
    path = tmp_path / "with_args.pth"
    torch.save({"model": make().state_dict(), "args": argparse.Namespace(lr=0.1)}, path)
    with pytest.raises(CheckpointError, match=r"arbitrary objects \(argparse.Namespace\)"):
        load_weights(make(), path, "resnet8")


@pytest.mark.parametrize(
    "content",
    [
        os.urandom(2048),
        b"hello, this is not a checkpoint at all",
        b"",
        b"PK\x03\x04" + b"\x00" * 100,
    ],
    ids=["random", "text", "empty", "fake-zip"],
)
@pytest.mark.parametrize("suffix", [".pt", ".safetensors"])
def test_garbage_refused(tmp_path: Path, content: bytes, suffix: str) -> None:
    path = tmp_path / f"garbage{suffix}"
    path.write_bytes(content)
    with pytest.raises(CheckpointError) as exc:
        load_state_dict(path)
    assert_one_line_naming(exc, path)


def test_truncated_files_refused(tmp_path: Path) -> None:
    pt = tmp_path / "full.pt"
    torch.save(make().state_dict(), pt)
    st_path = tmp_path / "full.safetensors"
    save_weights(make(), st_path)
    for full in (pt, st_path):
        cut = tmp_path / f"cut{full.suffix}"
        cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
        with pytest.raises(CheckpointError) as exc:
            load_state_dict(cut)
        assert_one_line_naming(exc, cut)


@pytest.mark.parametrize(
    ("content", "pattern"),
    [
        ([1, 2, 3], "holds a list, not a state_dict"),
        (torch.ones(3), "holds a Tensor, not a state_dict"),
        ({"epoch": 3, "best_acc": 0.5}, "holds no state_dict.*'epoch'"),
        ({}, "holds no state_dict"),
        ({"w": torch.ones(2), "epoch": 3}, "holds no state_dict"),
        ({"model": {"w": torch.ones(2), "note": "x"}}, "holds no state_dict"),
    ],
)
def test_non_state_dict_content_refused(tmp_path: Path, content: object, pattern: str) -> None:
    path = tmp_path / "odd.pt"
    torch.save(content, path)
    with pytest.raises(CheckpointError, match=pattern) as exc:
        load_state_dict(path)
    assert_one_line_naming(exc, path)


def test_wrong_architecture_refused(tmp_path: Path) -> None:
    path = tmp_path / "x.pt"
    torch.save(make("resnet8").state_dict(), path)
    target = make("resnet8x4", seed=1)
    before = {k: v.clone() for k, v in target.state_dict().items()}
    with pytest.raises(CheckpointError) as exc:
        load_weights(target, path, "resnet8x4")
    message = assert_one_line_naming(exc, path)
    assert message.startswith(f"checkpoint {str(path)!r} does not fit architecture 'resnet8x4': ")
    assert re.search(r"\d+ missing keys? \(e\.g\. '[\w.]+'\)", message)
    assert re.search(r"\d+ shape mismatch(es)? \(e\.g\. 'conv1\.weight': checkpoint ", message)
    # a refused load leaves the model untouched
    after = target.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)


def test_wrong_architecture_counts_keys(tmp_path: Path) -> None:
    state = make("resnet8").state_dict()
    del state["fc.weight"], state["fc.bias"]
    state["head.weight"] = torch.zeros(1)
    path = tmp_path / "x.safetensors"
    save_weights(state, path)
    with pytest.raises(CheckpointError) as exc:
        load_weights(make("resnet8"), path, "resnet8")
    assert str(exc.value) == (
        f"checkpoint {str(path)!r} does not fit architecture 'resnet8': "
        "2 missing keys (e.g. 'fc.weight'), 1 unexpected key (e.g. 'head.weight')"
    )


def test_wrong_num_classes_refused(tmp_path: Path) -> None:
    path = tmp_path / "c100.safetensors"
    save_weights(make("resnet8", num_classes=100), path)
    with pytest.raises(
        CheckpointError,
        match=r"2 shape mismatches \(e\.g\. 'fc\.weight': "
        r"checkpoint \[100, 64\] vs model \[10, 64\]\)",
    ):
        load_weights(make("resnet8", num_classes=10), path, "resnet8")


def test_checkpoint_without_num_batches_tracked_loads(tmp_path: Path) -> None:
    source = make(seed=0)
    state = {k: v for k, v in source.state_dict().items() if "num_batches_tracked" not in k}
    path = tmp_path / "old.pt"
    torch.save(state, path)
    target = make(seed=1)
    load_weights(target, path, "resnet8")
    for key, value in state.items():
        assert torch.equal(target.state_dict()[key], value)
