"""The report's figures against a hand computation over runs made with ``train``; two caches
are flagged and kept apart; ``--baseline`` changes the pairing."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from sortkd_cache.pipelines.report import report

from .conftest import subset


def _summary(run: Path) -> float:
    return float(json.loads((run / "summary.json").read_text())["final_test_top1"])


def _rows(run: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def _variant(data: dict[str, Any], name: str) -> dict[str, Any]:
    return next(v for v in data["variants"] if v["name"] == name)


def test_three_train_runs_by_hand(runs: Path, tmp_path: Path) -> None:
    names = [f"kd-raw-{s}" for s in (0, 1, 2)] + [f"ce-raw-{s}" for s in (0, 1, 2)]
    data, text = report([str(subset(runs, tmp_path / "in", names))], tmp_path / "out")
    kd = [_summary(runs / f"kd-raw-{s}") for s in (0, 1, 2)]
    ce = [_summary(runs / f"ce-raw-{s}") for s in (0, 1, 2)]
    mean = sum(kd) / 3
    std = math.sqrt(sum((x - mean) ** 2 for x in kd) / 2)
    v = _variant(data, "kd raw")
    assert v["seeds"] == [0, 1, 2] and v["test_top1"] == kd
    assert v["mean"] == pytest.approx(mean) and v["std"] == pytest.approx(std)
    assert (v["min"], v["max"], v["n"]) == (min(kd), max(kd), 3)
    # the curves: per epoch, the mean over the three seeds and the band lowest..highest
    rows = [_rows(runs / f"kd-raw-{s}") for s in (0, 1, 2)]
    for e in range(3):
        at = [r[e]["test_top1"] for r in rows]
        assert v["curves"]["test_top1"]["mean"][e] == pytest.approx(sum(at) / 3)
        assert (v["curves"]["test_top1"]["low"][e], v["curves"]["test_top1"]["high"][e]) == (
            min(at), max(at))  # fmt: skip
        assert v["curves"]["loss"]["mean"][e] == pytest.approx(sum(r[e]["loss"] for r in rows) / 3)
    # paired by seed against CE (the default baseline): the t-interval with t(0.975, 2)
    (p,) = data["paired"]
    diffs = [a - b for a, b in zip(kd, ce, strict=True)]
    d = sum(diffs) / 3
    sd = math.sqrt(sum((x - d) ** 2 for x in diffs) / 2)
    half = 4.303 * sd / math.sqrt(3)
    assert (p["variant"], p["baseline"], p["diffs"]) == ("kd raw", "ce", diffs)
    assert p["mean"] == pytest.approx(d) and p["std"] == pytest.approx(sd)
    assert p["low"] == pytest.approx(d - half) and p["high"] == pytest.approx(d + half)
    assert p["agree"] == sum((x > 0) == (d > 0) and x != 0 for x in diffs)
    assert p["within_noise"] == (d - half <= 0 <= d + half)
    assert data["varying"] == ["loss"]
    assert data["conclusions"][0].startswith("kd raw ")
    assert f"{d:+.2f}" in text or f"{abs(d):.2f}" in text
    on_disk = json.loads((tmp_path / "out" / "report.json").read_text())
    assert on_disk == json.loads(json.dumps(data))


def test_two_caches_are_flagged_and_kept_apart(
    runs: Path, other_cache_runs: Path, tmp_path: Path
) -> None:
    one = subset(runs, tmp_path / "monday", ["kd-raw-0", "kd-raw-1", "kd-raw-2"])
    data, text = report([str(one), str(other_cache_runs)], None)
    assert data["provenance"]["flags"] == [
        "the runs come from 2 different caches: reported apart (--mix averages them)"
    ]
    assert len(data["provenance"]["caches"]) == 2
    names = [v["name"] for v in data["variants"]]
    assert len(names) == 2 and all(n.startswith("kd raw [cache ") for n in names)
    assert sorted(v["n"] for v in data["variants"]) == [2, 3]
    assert "Warning:" in text
    mixed, _ = report([str(one), str(other_cache_runs)], None, mix=True)
    (v,) = mixed["variants"]
    assert v["name"] == "kd raw" and v["seeds"] == [0, 1, 2, 3, 4]
    assert mixed["provenance"]["flags"] == [
        "the runs come from 2 different caches: averaged together (--mix)"
    ]


def test_baseline_changes_the_pairing(runs: Path) -> None:
    default, _ = report([str(runs)], None)
    pairs = [(p["variant"], p["baseline"]) for p in default["paired"]]
    assert pairs == [("kd raw", "ce"), ("kd sort", "ce"), ("kd sort", "kd raw")]
    assert default["varying"] == ["loss", "logits"]
    raw, _ = report([str(runs)], None, baseline="raw")
    assert [(p["variant"], p["baseline"]) for p in raw["paired"]] == [("kd sort", "kd raw")]
    named, _ = report([str(runs)], None, baseline="kd sort")
    assert [(p["variant"], p["baseline"]) for p in named["paired"]] == [
        ("ce", "kd sort"), ("kd raw", "kd sort")]  # fmt: skip
