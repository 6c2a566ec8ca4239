"""How a model computes: its precision, memory format and compilation (typed options).

* ``precision``: ``fp32`` (default: no autocast, bit-identical to runs made before the
  option), ``bf16`` or ``fp16``: the forward runs under ``torch.autocast`` in that dtype and
  the logits are cast back to float32, so every loss, the divergence guard and the metrics
  compute in float32. ``fp16`` scales the loss with a ``torch.amp.GradScaler`` (its state is
  checkpointed), on CUDA and on the CPU alike. The weights and the optimizer stay float32.
* ``channels_last``: the model and each batch in ``torch.channels_last`` memory format (the
  layout tensor cores and oneDNN prefer for convolutions).
* ``compile``: the forward through ``torch.compile`` (off by default: the first steps pay the
  compilation, minutes on a CPU).

The fields are declared here once and taken flat into the train configuration
(``--precision``, ``--channels-last``, ``--compile``); :class:`~sortkd_cache.training.Amp`
applies them to a model's step. ``channels_last`` and ``compile`` change how a run executes,
not what it computes (to float rounding): a resume may change them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sortkd_cache.options import opt

__all__ = ["PRECISIONS", "Precision"]

#: What ``--precision`` accepts.
PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class Precision:
    """A model's compute switches (see the module docstring)."""

    precision: str = opt(
        "fp32",
        "Forward precision: fp32, or bf16/fp16 under torch.autocast (fp16 with a gradient "
        "scaler); losses and weights stay float32.",
        choices=PRECISIONS, recipe=True,
    )  # fmt: skip
    channels_last: bool = opt(False, "Model and batches in channels-last memory format.",
                              runtime=True, recipe=True)  # fmt: skip
    compile: bool = opt(False, "Compile the forward with torch.compile.", runtime=True,
                        recipe=True)  # fmt: skip
