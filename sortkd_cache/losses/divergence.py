"""The divergence guard's rule and its message: a pure check of one loss value, no torch.

KD scales its soft term by T² (16 at T = 4, the paper's), so a learning rate that suits CE can
make a student without BatchNorm blow up under KD: its logits grow without bound and the loss
with them, then turns NaN. A training loop checks every step's loss (before the optimizer
step) against a *reference*: the same loss, at the same step and epoch, of a student that
predicts nothing (all-zero logits, the uniform distribution). That reference follows each
loss's own scale, T² included, and its warm-ups and ramps (DKD's, CTKD's) when it is taken once
per epoch. A loss that is not finite, or above ``factor`` times the reference (10 by default;
the reference counts as at least :data:`REFERENCE_FLOOR`), has diverged: a student that learns
anything is not ten times worse than one that guesses, and one that diverges passes that bound
within a few steps.

The training engine (:mod:`sortkd_cache.training`) applies this rule on the device, with no
host read in the step, and formats the reason with :func:`check_divergence` once the epoch's
values are read; ``train`` then stops with exit 2 and one line naming the epoch; a sweep marks
that member failed and trains the others on.
"""

from __future__ import annotations

import math

__all__ = [
    "DIVERGENCE_FACTOR",
    "REFERENCE_FLOOR",
    "check_divergence",
    "divergence_bound",
    "divergence_message",
]

#: How many times the uniform prediction's loss a step's loss may reach.
DIVERGENCE_FACTOR = 10.0
#: The smallest reference the bound uses (a teacher close to uniform makes a tiny reference).
REFERENCE_FLOOR = 1.0


def divergence_bound(reference: float, factor: float = DIVERGENCE_FACTOR) -> float:
    """The largest sane loss: ``factor * max(reference, REFERENCE_FLOOR)``."""
    return factor * max(reference, REFERENCE_FLOOR)


def divergence_message(what: str, *, epoch: int, lr: float) -> str:
    """The one-line reason a run stopped: ``what`` happened at ``epoch`` (1-based), with a
    learning rate below ``lr`` to try."""
    return (
        f"training diverged at epoch {epoch}: {what}; the learning rate {lr:g} is too high for "
        f"this student and loss, lower it (e.g. --lr {lr / 10:g})"
    )


def check_divergence(
    loss: float,
    reference: float,
    *,
    epoch: int,
    lr: float,
    factor: float = DIVERGENCE_FACTOR,
) -> str | None:
    """``None`` while ``loss`` is finite and within :func:`divergence_bound` of ``reference``
    (the loss of all-zero logits on the same batch and epoch); else the one-line reason,
    naming ``epoch`` (1-based) and suggesting a learning rate below ``lr``.
    """
    if math.isfinite(loss):
        bound = divergence_bound(reference, factor)
        if not math.isfinite(bound) or loss <= bound:
            return None
        what = (
            f"loss {loss:.4g} is over {bound:.4g} ({factor:g}x the loss of a uniform "
            f"prediction, {reference:.4g})"
        )
    else:
        what = f"loss is {loss}"
    return divergence_message(what, epoch=epoch, lr=lr)
