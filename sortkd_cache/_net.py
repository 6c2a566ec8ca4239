"""How long the network may keep a command waiting: ``SORTKD_REMOTE_TIMEOUT`` seconds.

A remote store (s3://, gs://, http(s)://) that does not answer, and a weights download
(``--teacher-init pretrained``) with no network, fail within this bound with one line instead
of the libraries' own retries (botocore, gcsfs, huggingface_hub: 20 s to many minutes). The
bound is per step: one connection attempt, one request of a store's probe, one socket read.
"""

from __future__ import annotations

import math
import os
import socket
import threading
from urllib.parse import urlsplit

from sortkd_cache.errors import ConfigError

__all__ = ["DEFAULT_TIMEOUT", "TIMEOUT_ENV", "remote_timeout", "unreachable"]

TIMEOUT_ENV = "SORTKD_REMOTE_TIMEOUT"
#: Seconds, when ``SORTKD_REMOTE_TIMEOUT`` is not set.
DEFAULT_TIMEOUT = 10.0


def remote_timeout() -> float:
    """``SORTKD_REMOTE_TIMEOUT`` in seconds (default :data:`DEFAULT_TIMEOUT`); a value that
    is not a number in (0, 86400] is one ConfigError naming it."""
    text = os.environ.get(TIMEOUT_ENV, "").strip()
    if not text:
        return DEFAULT_TIMEOUT
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not 0 < value <= 86400:  # also refuses nan
        raise ConfigError(f"{TIMEOUT_ENV}={text!r}: expected seconds in (0, 86400]")
    return value


def _connect(host: str, port: int, timeout: float, out: list[BaseException]) -> None:
    try:
        socket.create_connection((host, port), timeout=timeout).close()
    except BaseException as exc:  # reported to the caller's thread
        out.append(exc)


def unreachable(url: str, timeout: float | None = None) -> str | None:
    """Why ``url``'s host cannot be reached (name lookup and one TCP connection, both within
    ``timeout`` seconds, default :func:`remote_timeout`), or None when it answers."""
    timeout = remote_timeout() if timeout is None else timeout
    parts = urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    errors: list[BaseException] = []
    # getaddrinfo has no timeout of its own: the lookup runs on a daemon thread, waited for
    worker = threading.Thread(
        target=_connect, args=(parts.hostname or "", port, timeout, errors), daemon=True
    )
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        return f"no answer within {timeout:g} s ({TIMEOUT_ENV})"
    if errors:
        exc = errors[0]
        why = exc.strerror if isinstance(exc, OSError) else None
        return why or str(exc) or type(exc).__name__
    return None
