"""Bytes per sample-view and fidelity of the top-K copy of sorted logits (C = 100 and 1000)."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import synthetic_store


def run(quick: bool = False) -> dict[str, Any]:
    from sortkd_cache.pipelines.sort import SortConfig, sort_store

    rows = []
    tmp = Path(tempfile.mkdtemp(prefix="bench-topk-"))
    try:
        for c, ks in ((100, (5, 10, 20)), (1000, (10, 50, 100))):
            n = 2000 if quick else 20000
            path = tmp / f"c{c}.zarr"
            synthetic_store(path, n, 1, c)
            for k in ks:
                sort_store(SortConfig(store=str(path), topk=k, overwrite=True, progress=False))
                from sortkd_cache import open_store

                topk = open_store(path).kind_attrs("sort")["topk"]
                rows.append({"classes": c, **topk})
        return {
            "rows": rows,
            "note": "synthetic float16 logits N(0, 2^2), label max in 85% of rows",
        }
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    print(json.dumps(run(quick="--quick" in sys.argv), indent=2))
