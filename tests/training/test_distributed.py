"""Under torchrun (2 ranks, gloo), a member that diverges on one rank only stops on both at
the same step, and takes no step from it; every other member equals its solo run."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parent / "_two_ranks.py"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@pytest.mark.slow
def test_a_member_diverging_on_one_rank_stops_on_both(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK")}
    env |= {"OMP_NUM_THREADS": "1", "SORTKD_NO_PROGRESS": "1"}
    cmd = [
        sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
        "--master-addr", "127.0.0.1", "--master-port", str(_free_port()),
        str(SCRIPT), str(tmp_path),
    ]  # fmt: skip
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    for r, seen in enumerate(ranks):
        # b's NaN loss was rank 1's only, from its 4th step: both ranks stopped it there
        assert seen["failure"] == {"a": None, "b": 3, "c": None}, r
        assert seen["local"]["b"] is (r == 1)
        # no NaN gradient (all-reduced from rank 1) ever reached b's weights on either rank
        assert seen["b_finite"] and seen["b_moved"]
        assert seen["equal_to_solo"] == {"a": True, "c": True}
    assert ranks[0]["b_weights"] == ranks[1]["b_weights"]
