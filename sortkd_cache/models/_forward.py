"""The teacher's forward pass over a batch, as ``dump`` stores it and an online teacher
(``train --online-teacher``) computes it: one function, so the two agree bit for bit."""

from __future__ import annotations

import torch

__all__ = ["teacher_logits"]


@torch.inference_mode()
def teacher_logits(model: torch.nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Teacher logits (float32) over ``x`` in micro-batches starting at index 0."""
    outs = [model(x[i : i + batch_size]).float() for i in range(0, x.shape[0], batch_size)]
    return torch.cat(outs) if outs else x.new_zeros((0, 0))
