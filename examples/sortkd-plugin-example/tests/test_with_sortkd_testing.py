"""The example package's own tests, written with ``sortkd_cache.testing`` as a plugin's tests
would be: run them with the package installed (``pip install -e . && pytest tests``). The main
suite runs them too, with the package installed the way pip would
(``tests/plugins/test_plugin_testing.py``)."""

from __future__ import annotations

import json
from pathlib import Path

from sortkd_cache.testing import dump_and_sort, invoke, one_error_line, run_cli

ONE_EPOCH = ("--epochs", "1", "--milestones", "", "--batch-size", "32", "--device", "cpu")


def test_lift_sorts_and_the_pooled_student_trains_from_it(tmp_path: Path) -> None:
    store = dump_and_sort(tmp_path / "s.zarr", methods=("lift",))
    info = json.loads(invoke("info", str(store), "--json").stdout)
    assert "lift" in info["logits"]
    run = tmp_path / "run"
    result = invoke("train", "--cache", str(store), "--student", "pooled_mlp", "--loss", "kd",
                    "--logits", "lift", *ONE_EPOCH, "--no-progress", "--out", str(run))  # fmt: skip
    assert result.exit_code == 0, result.stderr
    config = json.loads((run / "config.json").read_text())
    assert (config["student"], config["logits"]) == ("pooled_mlp", "lift")


def test_a_negative_weight_is_one_line_naming_it(tmp_path: Path) -> None:
    """In the console script (``run_cli``): the options a loss package adds are the CLI's
    from its start, and this process's CLI may have started before the package was on the
    path (as in the main suite)."""
    proc = run_cli("train", "--dataset", "digits", "--student", "pooled_mlp", "--loss",
                   "logit_mse", "--mse-weight", "-1", "--out", str(tmp_path / "r"))  # fmt: skip
    one_error_line(proc, "--mse-weight", "-1")
    assert not (tmp_path / "r").exists()
