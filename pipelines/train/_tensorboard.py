"""``--log tensorboard``: one TensorBoard event directory per run, RUN_DIR/tensorboard/.

It holds the run's configuration as text (tag ``config``, step 0), every number of each
metrics.jsonl row as a scalar at its epoch (tags ``epoch/<key>``: ``epoch/loss``,
``epoch/test_top1``, ``epoch/lr``, ...), and the training loss of every ``--log-every``-th
optimizer step (tag ``step/loss``, at the global step). ``tensorboard --logdir SWEEP_DIR``
shows a sweep's members side by side (each member's run directory is one run).

The writer is torch's ``SummaryWriter``, which needs the ``tensorboard`` package: the
optional extra ``pip install 'sortkd-cache[tensorboard]'``; without it ``--log tensorboard``
is refused (exit 2) before anything is trained. An epoch is logged after its checkpoint, so a
resumed run (which appends to the events) logs no epoch twice.
"""

from __future__ import annotations

import importlib.util
import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sortkd_cache.errors import ConfigError

if TYPE_CHECKING:
    from torch.utils.tensorboard import SummaryWriter

__all__ = ["EVENT_DIR", "LOG_CHOICES", "TensorBoardLog", "check_log"]

EVENT_DIR = "tensorboard"
#: what ``--log`` takes
LOG_CHOICES = ("tensorboard",)


def check_log(log: str | None) -> None:
    """Refuse ``--log tensorboard`` where the optional extra is not installed."""
    if log == "tensorboard" and importlib.util.find_spec("tensorboard") is None:
        raise ConfigError(
            "--log tensorboard needs the package 'tensorboard': install the optional extra, "
            "pip install 'sortkd-cache[tensorboard]'"
        )


class TensorBoardLog:
    """The event writer of one run (rank 0 only)."""

    def __init__(self, run_dir: Path, config: dict[str, Any], every: int, start_epoch: int):
        """``start_epoch``: the epochs already done (a resume appends to the events)."""
        from torch.utils.tensorboard import SummaryWriter

        self.writer: SummaryWriter = SummaryWriter(str(run_dir / EVENT_DIR))
        self.every = every
        if start_epoch == 0:
            text = json.dumps(config, indent=2, sort_keys=True, default=str)
            self.writer.add_text("config", "    " + text.replace("\n", "\n    "), 0)

    def epoch(self, row: dict[str, Any], step_losses: list[float]) -> None:
        """One epoch: every number of its metrics row at its epoch, and every ``every``-th of
        its step losses (host floats the step already had) at its global step."""
        at = int(row["epoch"])
        for key, value in row.items():
            is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
            if key != "epoch" and is_number and math.isfinite(value):
                self.writer.add_scalar(f"epoch/{key}", float(value), at)
        base = (at - 1) * len(step_losses)
        for i, loss in enumerate(step_losses, base + 1):
            if i % self.every == 0:
                self.writer.add_scalar("step/loss", loss, i)
        self.writer.flush()

    def close(self) -> None:
        self.writer.flush()
        self.writer.close()
