"""The names of the choices that several layers offer, importable without torch.

The command line builds its ``--help`` from these before any heavy import; the modules that
act on a choice (datasets, teacher construction, decoding, autocast) import them from here.
"""

from __future__ import annotations

__all__ = [
    "DATA_PATHS",
    "DECODERS",
    "PRECISIONS",
    "SEED_MAX",
    "SOFT_LABEL_MODES",
    "SPLITS",
    "TEACHER_INITS",
]

#: The splits a dataset spec can name.
SPLITS: tuple[str, ...] = ("test", "train")
#: Where a teacher's weights come from (``--teacher-init``).
TEACHER_INITS: tuple[str, ...] = ("checkpoint", "pretrained", "random")
#: Teacher forward precisions (``--precision``): fp32 is exact, the others autocast.
PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "fp16")
#: Where training batches are assembled (``train --data-path``).
DATA_PATHS: tuple[str, ...] = ("auto", "device", "loader")
#: How soft labels are read (``train --soft-labels``): whole views, or streamed by chunk.
SOFT_LABEL_MODES: tuple[str, ...] = ("auto", "view", "stream")
#: Seeds are 32-bit: every generator that takes one (torch, numpy, the view sampler) agrees
#: (``--seed``, ``--data-seed``, ``verify --seed``).
SEED_MAX = 2**32 - 1
#: JPEG decoders of ``dump`` (``--decoder``).
DECODERS: tuple[str, ...] = ("pil", "nvjpeg")
