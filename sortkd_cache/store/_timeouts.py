"""Time limits of remote stores: ``SORTKD_REMOTE_TIMEOUT`` (:mod:`sortkd_cache._net`).

botocore's connect and read timeouts (s3://) are set from it where the user's storage
options leave them open, and the probe of a store's root (every remote open) is cancelled
when it takes longer, whatever the scheme: a dead endpoint costs one bound, not the
libraries' retries. (aiohttp, under http(s)://, gives up a request after 300 s itself.)
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from sortkd_cache._net import TIMEOUT_ENV

__all__ = ["bounded", "no_answer", "s3_timeouts"]

T = TypeVar("T")


def s3_timeouts(opts: dict[str, Any], timeout: float) -> dict[str, Any]:
    """s3:// storage options with botocore's connect and read timeouts set to ``timeout``
    seconds where ``opts`` (the user's) do not set them."""
    out = dict(opts)
    config = dict(out.get("config_kwargs") or {})
    config.setdefault("connect_timeout", timeout)
    config.setdefault("read_timeout", timeout)
    out["config_kwargs"] = config
    return out


async def bounded(awaitable: Awaitable[T], timeout: float) -> T:
    """``awaitable``, cancelled after ``timeout`` seconds (TimeoutError)."""
    return await asyncio.wait_for(awaitable, timeout)


def no_answer(timeout: float) -> TimeoutError:
    """The error of a step that got no answer in time (for ``remote_error`` to word)."""
    return TimeoutError(f"no answer within {timeout:g} s (set {TIMEOUT_ENV} to wait longer)")
