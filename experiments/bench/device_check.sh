#!/usr/bin/env bash
# The GPU checks of reprl, in one go, on a machine with CUDA (CI has none): the CUDA tests, then
# the device benchmarks: every representation's pretraining step and the Lab rooms at N = 256 and
# 4096, on cuda beside cpu; with
# "all", also batched Breakout at N up to 16384 on cuda beside cpu and PPO with a frozen
# encoder on cuda beside cpu. Writes logs and JSON to ${OUT:-bench_out}/.
#   bash experiments/bench/device_check.sh [all]
set -uo pipefail
OUT=${OUT:-bench_out}
mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 OMP_WAIT_POLICY=PASSIVE
nvidia-smi -L | tee "$OUT/gpu.txt"
python3 -c "import torch, numpy, gymnasium, stable_baselines3 as s; print('torch', torch.__version__, 'numpy', numpy.__version__, 'gymnasium', gymnasium.__version__, 'sb3', s.__version__, 'cuda', torch.cuda.is_available())" | tee -a "$OUT/gpu.txt"
python3 -m pytest -q -m cuda -p no:cacheprovider \
  tests/envs/test_breakout_adapters.py tests/envs/test_lab_env.py tests/agents/test_cuda.py \
  tests/representations/test_cuda.py 2>&1 | tee "$OUT/cuda_tests.log"
python3 -m experiments.bench.bench_pretrain --models-only --devices cuda cpu --batch 32 \
  --seconds 3 > "$OUT/bench_pretrain_models.json" 2> "$OUT/bench_pretrain.err"
grep -E '"(method|device|ms_per_step|images_per_s)"' "$OUT/bench_pretrain_models.json"
python3 -m experiments.bench.bench_lab --seconds 2 --rounds 2 --sizes 256 4096 --devices cuda cpu \
  > "$OUT/bench_lab_devices.json" 2> "$OUT/bench_lab.err"
grep -E '"(task|device|num_envs|core|vecenv)"' "$OUT/bench_lab_devices.json"
[ "${1:-}" = all ] || exit 0
python3 -m experiments.bench.bench_envs --sizes --seconds 2 --devices cuda cpu \
  --device-sizes 256 1024 4096 16384 > "$OUT/bench_envs_devices.json" 2> "$OUT/bench_envs.err"
tail -c 1500 "$OUT/bench_envs_devices.json"
for dev in cuda cpu; do
  python3 -m experiments.bench.bench_agents --seconds 8 --device $dev \
    --kinds pixels extractor wrapper > "$OUT/bench_agents_$dev.json" 2> "$OUT/bench_agents_$dev.err"
  grep -A12 '"results"' "$OUT/bench_agents_$dev.json"
done
