"""``python -m sortkd_cache.cli`` (what torchrun launches)."""

from __future__ import annotations

from sortkd_cache.cli.main import main

if __name__ == "__main__":
    main()
