"""Old recipes keep their stage hashes: the configuration of each stage of every shipped
recipe (the teacher's CE run, the dump, each student variant), hashed as ``run`` records it in
run-state.json, is pinned here. A run directory made before a change of the option system
therefore skips its finished stages after it. The pins were taken before ``TrainConfig`` was
declared in sections (issue 29.5) and must never change: an option added later enters a
stage's configuration only when set (``opt(..., hashed=True)`` marks the frozen set that is
always recorded)."""

from __future__ import annotations

from dataclasses import asdict

import pytest

from sortkd_cache.pipelines.recipes import config_hash, load_recipe, recipe_names
from sortkd_cache.sparse import DEFAULT_SAMPLED_TAIL

#: ``digits_demo`` with later keys set (an optimizer, a data seed, a view order, a precision)
SET = ("train.optimizer='adamw'", "train.data_seed=3", "train.views_order='shuffle'",
       "dump.precision='bf16'")  # fmt: skip

PINNED: dict[str, dict[str, str]] = {
    "cifar100_resnet110_resnet32": {
        "teacher": "f6e3ef73c0d814a9",
        "dump": "3ddfa30674210174",
        "ce-only": "81d3ebb0b820794d",
        "kd-raw": "30cb170fcd54b498",
        "kd-sort": "cd191ae8854256e7",
        "kd-swap": "3cfb534d0a8060d9",
        "dkd-raw": "c73edaebd4c59eba",
        "dkd-sort": "71b743c10266d6c7",
    },
    "cifar100_resnet32x4_resnet8x4": {
        "teacher": "4489479634f84498",
        "dump": "3ddfa30674210174",
        "ce-only": "9cb6bc41b651ea61",
        "kd-raw": "f03265bea5771c05",
        "kd-sort": "eea037b9e0cf751b",
        "kd-swap": "f958c172da8f7c28",
        "dkd-raw": "d62f161bb7a544e8",
        "dkd-sort": "df40b6e314546b5b",
    },
    "cifar100_resnet56_resnet20": {
        "teacher": "1977ec0c9d3d45ad",
        "dump": "3ddfa30674210174",
        "ce-only": "aa5182bea373432a",
        "kd-raw": "fc4c40b13dd43183",
        "kd-sort": "01d48b3489b0e46c",
        "kd-swap": "203dc86aa4b52081",
        "dkd-raw": "13b926b4369db6f3",
        "dkd-sort": "20d59f4b1ece4762",
    },
    "cifar100_vgg13_vgg8": {
        "teacher": "36fc7f632b3b7a79",
        "dump": "3ddfa30674210174",
        "ce-only": "b7f31cec34f4e93f",
        "kd-raw": "d51d4ff8223e665b",
        "kd-sort": "473ee736f631de92",
        "kd-swap": "04638aee314e5adc",
        "dkd-raw": "34e9a2f60153adc5",
        "dkd-sort": "7f2efac35d024853",
    },
    "cifar100_wrn_40_2_wrn_16_2": {
        "teacher": "3921fa51e94e1a0f",
        "dump": "3ddfa30674210174",
        "ce-only": "66a725f83274952d",
        "kd-raw": "8a5277f8451a96ce",
        "kd-sort": "a28715db9c925784",
        "kd-swap": "48d6b15c1fe75e98",
        "dkd-raw": "b5c0d5fb25595484",
        "dkd-sort": "a88e2f1276191665",
    },
    "cifar100_wrn_40_2_wrn_40_1": {
        "teacher": "3921fa51e94e1a0f",
        "dump": "3ddfa30674210174",
        "ce-only": "9705d19fb9d35e36",
        "kd-raw": "8723efcb268ee524",
        "kd-sort": "06c5b186c17a1657",
        "kd-swap": "295c86a1b2dd55b1",
        "dkd-raw": "d90f4d5a55ecc6fe",
        "dkd-sort": "8b5eeb6bf5f37981",
    },
    "digits100_demo": {
        "teacher": "9dc5f683bd0065c6",
        "dump": "869213ddb3c476d5",
        "ce": "9a43647345bbc266",
        "kd-raw": "292ecd658e6b9c45",
        "kd-sort": "d475901f5ceb2627",
        "dkd-raw": "b7740fc84f30829a",
        "dkd-sort": "7b8b021761aa00fb",
        "kd-sort-top-10": "1b4255e8442c5d23",
        # the recipe's sampled student became the hybrid 4+3 (issue 31): a new student, its
        # own hash, which names its tail handling (student) since the default changed from
        # counts (the sampled-5 student's was 49084a6ca49ff856)
        "kd-sort-sampled-4-3": "ea5e688d02e24b2d",
        # every class of the sorted rows in 3 bits (train --quantize 3)
        "kd-sort-3-bit": "dec944479b41e37c",
    },
    "digits_demo": {
        "teacher": "14175b1d46b65a37",
        "dump": "869213ddb3c476d5",
        "ce-only": "0ee4168c1b64ef9f",
        "kd-raw": "6ccb495461bece35",
        "kd-sort": "9f36af9d41335455",
        "kd-swap": "ab536553fb089116",
        "dkd-raw": "a811804f0b6ccb1f",
        "dkd-sort": "8538e71e84d7b5b0",
        "dkd-swap": "25d53edcd45af0d2",
    },
    "imagenet_resnet34_resnet18": {
        "teacher": "9d4e84a49dcba539",
        "dump": "9e0da041f216d4f6",
        "ce-only": "203e1800b7381663",
        "kd-raw": "668d10884feefa1a",
        "kd-sort": "68c67280842638a5",
        "dkd-raw": "270e7be757953db9",
        "dkd-sort": "27327943e62b7eef",
    },
    "imagenet_timm_resnet50_resnet18": {
        "teacher": "d01c737b2f7db96d",
        "dump": "9e0da041f216d4f6",
        "kd-raw-torchvision-resnet18": "668d10884feefa1a",
        "kd-sort-torchvision-resnet18": "68c67280842638a5",
        "kd-raw-timm-resnet18": "ce849d41e740e46e",
        "kd-sort-timm-resnet18": "55c4dd4eefd19258",
    },
    "digits_demo+set": {
        "teacher": "14175b1d46b65a37",
        "dump": "70c20fd701a48872",
        "ce-only": "2aa460f461c0e70f",
        "kd-raw": "4ecfae64287f1862",
        "kd-sort": "b52a90569de4daa4",
        "kd-swap": "917310e5647d8973",
        "dkd-raw": "2a82f7ee4c771884",
        "dkd-sort": "7a7b71b4eeefbdba",
        "dkd-swap": "b17b95cdb927280b",
    },
}


def stage_hashes(name: str, overrides: tuple[str, ...] = ()) -> dict[str, str]:
    """The hash of each stage's configuration, as ``run`` computes it (pipelines/run.py)."""
    r = load_recipe(name, overrides)
    teacher = {k: v for k, v in asdict(r.teacher).items() if k != "checkpoint"}
    out = {
        "teacher": config_hash({"dataset": r.dataset.spec, **teacher}),
        "dump": config_hash(r.dump.config()),
    }
    for s in r.students:
        out[s.slug] = config_hash(s.train_params())
    return out


def test_every_shipped_recipe_is_pinned() -> None:
    assert sorted(recipe_names()) == sorted(k for k in PINNED if "+" not in k)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_stage_hashes_are_unchanged(name: str) -> None:
    recipe, _, extra = name.partition("+")
    assert stage_hashes(recipe, SET if extra else ()) == PINNED[name]


def test_a_sampled_student_names_its_tail_in_its_stage_configuration() -> None:
    """The sampled students' default tail changed (counts -> student): their stage
    configuration names it, so a run directory from before is retrained, not reused; a dense
    student's configuration is as it was."""
    students = {s.name: s for s in load_recipe("digits100_demo").students}
    assert students["KD sort sampled 4+3"].train_params()["sparse_tail"] == DEFAULT_SAMPLED_TAIL
    assert "sparse_tail" not in students["KD sort"].train_params()
