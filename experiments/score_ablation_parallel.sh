#!/usr/bin/env bash
# The SCoRe ablation sweep with one process per seed on one machine (e.g. one GPU: the tiny model
# uses a sliver of it), then one merged table. Extra arguments go to every seed's sweep.
#   SEEDS="0 1 2 3 4" WORKDIR=workdirs/score_ablation bash experiments/score_ablation_parallel.sh \
#     --steps=90 --prompts_per_step=8
# Per-seed logs: $WORKDIR/seed_N.log; table: $WORKDIR/table.md. After a sweep, the same command with
# --fixed_first (and the sweep's arguments) adds $WORKDIR/fixed_first.md.
set -u
SEEDS=${SEEDS:-"0 1 2"}; WORKDIR=${WORKDIR:-workdirs/score_ablation}; PY=${PY:-python3}
export XLA_PYTHON_CLIENT_PREALLOCATE=false PYTHONUNBUFFERED=1   # share one accelerator between seeds
mkdir -p "$WORKDIR"
dirs=()
for s in $SEEDS; do
  $PY -m experiments.score_ablation --workdir="$WORKDIR/s$s" --seeds="$s" "$@" \
    > "$WORKDIR/seed_$s.log" 2>&1 &
  dirs+=("$WORKDIR/s$s")
done
wait
for s in $SEEDS; do tr '\r' '\n' < "$WORKDIR/seed_$s.log" | grep -a "^seed\|Error" ; done
$PY -m experiments.score_ablation --workdir="$WORKDIR" --merge="$(IFS=,; echo "${dirs[*]}")"
