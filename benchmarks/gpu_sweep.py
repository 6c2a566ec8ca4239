"""GPU sweep benchmark, ready to run in one call on a lent GPU machine (prints JSON):

    python benchmarks/gpu_sweep.py            # about 5 minutes on one H100

8 resnet8x4 students (kd, dkd x raw, sort x seeds 0, 1) on a dense fake:10000:100:32 cache,
1 epoch each: student-images per second of one sweep stacked (torch.func, one vmapped model),
one sweep unstacked, and 8 `train` runs one after another, interleaved, medians, with the GPU
named. Goal (issue 22): stacked >= 3x sequential.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine
from bench_sweep import resnet


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="gpu-sweep-") as tmp:
        figures = resnet(Path(tmp), False, 2, "cuda", n=10000)
    print(json.dumps({"machine": machine(), "resnet8x4_x8": figures}, indent=2))


if __name__ == "__main__":
    main()
