#!/usr/bin/env bash
# The kernels' GPU checks in one run (sized for a ~10-minute accelerator lease):
#   1. tests/test_kernels*.py compiled through Pallas Triton (head dims raised to 64 on a GPU);
#   2. experiments/bench_attention.py: decode, flash and sampler sections, each in its own process
#      with its own time limit, so a section that fails or runs long still leaves the others.
# Usage: OUT=some/dir bash experiments/gpu_checks.sh   (writes logs and JSON under $OUT)
set -u
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=$PWD PYTHONUNBUFFERED=1
PY=${PY:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv 2>&1 | tee "$OUT/gpu.txt"
$PY -c "import jax, flax; print('jax', jax.__version__, 'flax', flax.__version__, jax.devices())" 2>&1 | tee -a "$OUT/gpu.txt"
# f32 references on the GPU must not silently use TF32.
JAX_DEFAULT_MATMUL_PRECISION=highest timeout ${T_TESTS:-150} $PY -m pytest -q -p no:cacheprovider \
  tests/test_kernels.py tests/test_kernels_model.py 2>&1 | tail -40 | tee "$OUT/tests.log"
for sec in decode flash sampler; do
  lim=$(case $sec in decode) echo ${T_DECODE:-110};; flash) echo ${T_FLASH:-140};; *) echo ${T_SAMPLER:-170};; esac)
  timeout "$lim" $PY experiments/bench_attention.py --only "$sec" --out "$OUT/bench_$sec.json" \
    2>&1 | grep -v "^ " | tee "$OUT/bench_$sec.log" | tail -60
  echo "== $sec exit ${PIPESTATUS[0]}"
done
