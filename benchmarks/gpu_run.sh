#!/usr/bin/env bash
# The GPU checks and benchmarks, as one script for a lent GPU machine (see BENCHMARKS.md).
# Needs the wheels in .whl/ (zarr, numcodecs, dask, ... and this package, built with
# `pip wheel --no-deps -w .whl .`); writes everything under $OUT.
set -uo pipefail
OUT=${OUT:-/tmp/gpu_out}
mkdir -p "$OUT"
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 1
export PYTHONPATH=/tmp/site SORTKD_NO_PROGRESS=1 PYTHONUNBUFFERED=1
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, zarr, dask; print(torch.__version__, zarr.__version__, dask.__version__)" \
    | tee -a "$OUT/gpu.txt"
# 1. CUDA tests of the kernels, replay and losses (CPU == CUDA bit for bit where promised)
timeout 150 python3 -m pytest -q -p no:cacheprovider -W ignore::DeprecationWarning \
    -W ignore::FutureWarning tests/sorting tests/augment tests/losses 2>&1 | tail -15 \
    | tee "$OUT/cuda_tests.txt"
# 2. the GPU data path: device vs loader batches, cached vs online teacher, CUDA kernels
timeout 150 python3 benchmarks/gpu_datapath.py 2>&1 | tail -20 | tee "$OUT/gpu_datapath.json"
# 3. benchmarks (dump vs forward, sort kernel, train epoch ratios) on the GPU
timeout 330 python3 benchmarks/run_all.py --device-tag gpu --out "$OUT/BENCHMARKS_gpu.md" \
    --only bench_sort_kernel.py bench_dump.py bench_train.py 2>&1 | tail -20
# 4. the ImageNet-scale data path: dump fp32/bf16, PIL vs nvjpeg, streamed-soft-label epoch
timeout 420 python3 benchmarks/gpu_imagenet.py 2>&1 | tail -60 | tee "$OUT/gpu_imagenet.json"
# 5. training on the GPU, one table: step rates (resnet8x4, wrn_16_2; fp32, bf16,
#    bf16 + channels-last + compile), CE vs cached KD, a sweep of 8 (stacked, unstacked,
#    sequential), dump throughput in bf16 (budgeted to finish within 8 minutes)
timeout 480 python3 benchmarks/gpu_train.py --json "$OUT/gpu_train.json" 2>&1 | tail -30 \
    | tee "$OUT/gpu_train.md"
cp benchmarks/results/gpu.json "$OUT/gpu.json" 2>/dev/null
echo done
