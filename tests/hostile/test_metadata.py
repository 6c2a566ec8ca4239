"""Class 4: integrity of the metadata, not only of the chunks.

Informational fields: none. The metadata checksum (``sortkd_cache_sha256``) of every node
covers every field of its ``zarr.json``, including those that change nothing ``train`` does
(``created``, ``tool_version``, ``dump_seconds``, ``teacher_accuracy``, ``store_id``, an
array's ``stats``/``seconds``/``created``): the writers recompute it on every metadata write,
so leaving a field out would buy nothing. Only the formatting is not covered (whitespace, key
order, escapes): a flip there either breaks the JSON (refused) or parses to the same document
(changes nothing). The sweep below checks exactly that, for every bit of every byte.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sortkd_cache.testing import invoke, one_error_line

from .conftest import edit_json, tree_digest

NODES = (
    "zarr.json",
    "labels/zarr.json",
    "aug_params/zarr.json",
    "logits/raw/zarr.json",
    "logits/sort/zarr.json",
    "progress/raw/zarr.json",
    "progress/sort/zarr.json",
)


def _train(store: Path, out: Path, logits: str = "sort") -> list[str]:
    args = ["train", "--cache", str(store), "--student", "digits_mlp", "--epochs", "1"]
    return [*args, "--logits", logits, "--out", str(out), "--device", "cpu", "--no-progress"]


def test_a_one_byte_edit_of_the_recipe_is_caught_and_refused(store: Path, tmp_path: Path) -> None:
    from sortkd_cache.errors import SchemaError
    from sortkd_cache.store import open_store, verify_store

    root = store / "zarr.json"
    text = root.read_text()
    assert text.count('"pad": 4') == 1
    root.write_text(text.replace('"pad": 4', '"pad": 3'))  # one byte
    before = tree_digest(store)
    report = verify_store(store)
    assert not report.sound and report.problems[0].chunk == "zarr.json"
    assert "does not match its checksum" in report.problems[0].message
    with pytest.raises(SchemaError, match=r"zarr\.json metadata does not match its checksum"):
        open_store(store)
    one_error_line(invoke(*_train(store, tmp_path / "run")), "zarr.json", "checksum")
    assert not (tmp_path / "run").exists()
    result = invoke("verify", str(store), "--no-progress")
    assert result.exit_code == 1 and "[schema] zarr.json: store" in result.stdout
    assert tree_digest(store) == before


def test_a_resealed_non_canonical_recipe_is_still_refused(store: Path, tmp_path: Path) -> None:
    from sortkd_cache.store import verify_store

    def pad3(doc: dict) -> None:  # type: ignore[type-arg]
        doc["attributes"]["sortkd_cache"]["augment"]["pad"] = 3

    edit_json(store / "zarr.json", pad3, reseal=True)
    before = tree_digest(store)
    problems = [str(p) for p in verify_store(store).problems]
    assert problems == ["augmentation recipe 'cifar' has pad=3; the recipe 'cifar' is pad=4"]
    one_error_line(invoke(*_train(store, tmp_path / "run")), "pad=3")
    assert tree_digest(store) == before

    def unknown(doc: dict) -> None:  # type: ignore[type-arg]
        doc["attributes"]["sortkd_cache"]["augment"]["name"] = "cifar-evil"

    edit_json(store / "zarr.json", unknown, reseal=True)
    assert "'cifar-evil' is not a known recipe" in str(verify_store(store).problems[0])


@pytest.mark.parametrize("array", ["logits/raw", "logits/sort", "labels", "progress/sort"])
def test_a_fill_value_that_hides_missing_chunks_is_refused(
    store: Path, tmp_path: Path, array: str
) -> None:
    from sortkd_cache.store import verify_store

    def zero(doc: dict) -> None:  # type: ignore[type-arg]
        doc["fill_value"] = 0.0 if doc["data_type"].startswith("float") else 0  # as zarr writes

    if array.startswith("logits"):  # the chunk a fill value of 0 would turn into zeros
        (store / array / "c/0/0/0").unlink()
    for reseal in (False, True):
        edit_json(store / array / "zarr.json", zero, reseal=reseal)
        before = tree_digest(store)
        report = verify_store(store)
        found = [p for p in report.problems if p.array == array]
        assert found, report.problems
        want = "checksum" if not reseal else "fill value 0"  # 0 or 0.0
        assert any(want in p.message for p in found), found
        logits = "raw" if array == "logits/raw" else "sort"
        one_error_line(invoke(*_train(store, tmp_path / "run", logits)), array)
        assert tree_digest(store) == before


def _classify(raw: bytes, original: bytes) -> str:
    """'format' (parses to the same document), 'invalid' (not JSON) or 'changed'."""
    from sortkd_cache.store._integrity import canonical

    try:
        doc = json.loads(raw)
    except ValueError:
        return "invalid"
    if not isinstance(doc, dict):
        return "changed"
    return "format" if canonical(doc) == original else "changed"


def test_sweep_every_bit_of_every_node_zarr_json(hostile_base: Path, tmp_path: Path) -> None:
    """Flip each bit of each byte of the root and every array zarr.json, one at a time. Every
    flip that changes the document is reported by the metadata check that verify and the
    readers run; a sample of them goes through verify_store and train's own checks."""
    from sortkd_cache.errors import SortKDError
    from sortkd_cache.store import open_store, quick_check, verify_store
    from sortkd_cache.store._integrity import canonical, doc_problem

    counts = {"format": 0, "invalid": 0, "changed": 0}
    sample: list[tuple[str, bytes]] = []
    for node in NODES:
        original = (hostile_base / node).read_bytes()
        reference = canonical(json.loads(original))
        for i in range(len(original)):
            for bit in range(8):
                raw = bytearray(original)
                raw[i] ^= 1 << bit
                kind = _classify(bytes(raw), reference)
                counts[kind] += 1
                if kind == "changed":
                    assert doc_problem(json.loads(raw), required=True) is not None, (node, i, bit)
                    if counts["changed"] % 1499 == 1:
                        sample.append((node, bytes(raw)))
                elif kind == "invalid" and counts["invalid"] % 4999 == 1:
                    sample.append((node, bytes(raw)))
    assert counts["changed"] > 5000 and counts["invalid"] > 5000
    store = tmp_path / "s.zarr"
    for node, raw in sample:
        shutil.rmtree(store, ignore_errors=True)
        shutil.copytree(hostile_base, store)
        (store / node).write_bytes(raw)
        try:
            report = verify_store(store)
        except SortKDError:
            pass  # refused outright (exit 2): not a store any more
        else:
            assert not report.sound, (node, raw)
        kind = "raw" if "/raw/" in node else "sort"  # train reading the flipped node
        with pytest.raises(SortKDError):  # what train runs before it starts
            quick_check(open_store(store), [kind])


def test_old_schema_1_stores_are_read_and_verify_warns(store: Path) -> None:
    from sortkd_cache.store import open_store, verify_store
    from sortkd_cache.store._integrity import DIGEST_KEY

    for node in NODES:

        def old(doc: dict) -> None:  # type: ignore[type-arg]
            doc["attributes"].pop(DIGEST_KEY)
            if "sortkd_cache" in doc["attributes"]:
                doc["attributes"]["sortkd_cache"]["schema"] = 1

        edit_json(store / node, old, reseal=False)
    report = verify_store(store)
    assert report.sound
    assert any("schema 1 store: its metadata carries no checksums" in w for w in report.warnings)
    assert open_store(store).logits("sort")[0, 0].shape == (4,)


def test_a_schema_2_node_without_its_checksum_is_refused(store: Path) -> None:
    from sortkd_cache.errors import SchemaError
    from sortkd_cache.store import open_store, verify_store
    from sortkd_cache.store._integrity import DIGEST_KEY

    edit_json(store / "labels/zarr.json", lambda d: d["attributes"].pop(DIGEST_KEY), reseal=False)
    problems = verify_store(store).problems
    assert [(p.array, p.chunk) for p in problems] == [("labels", "zarr.json")]
    assert "has no metadata checksum" in problems[0].message
    with pytest.raises(SchemaError, match=r"labels/zarr\.json has no metadata checksum"):
        open_store(store)


def test_every_node_a_stage_writes_carries_a_valid_checksum(hostile_base: Path) -> None:
    from sortkd_cache.store._integrity import doc_problem

    for node in NODES:
        doc = json.loads((hostile_base / node).read_text())
        assert doc_problem(doc, required=True) is None, node
