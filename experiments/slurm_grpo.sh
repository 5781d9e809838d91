#!/bin/bash
# GRPO on a SLURM GPU cluster: one process per GPU (or per host), all processes one JAX mesh.
#
#   sbatch --nodes=2 --ntasks-per-node=8 --gpus-per-node=8 experiments/slurm_grpo.sh \
#       --config.mesh.data=2 --config.mesh.fsdp=8                          # one process per GPU
#   PER_HOST=1 sbatch --nodes=2 --ntasks-per-node=1 --gpus-per-node=8 experiments/slurm_grpo.sh \
#       --config.mesh.data=2 --config.mesh.fsdp=8                          # one process per host
#
# Fields to set for the cluster (extra arguments go to experiments.train): mesh.data x mesh.fsdp x
# mesh.tensor = every GPU of every node; rollout.prompts_per_step x rollout.group_size rows per step,
# a multiple of the process count (checked at start-up); rl.micro_batch_size for memory.
# Submit from the repository root with its .venv active. WORKDIR must be on a filesystem every node
# mounts: each process writes its checkpoint shards there.
#SBATCH --job-name=critjax-grpo
#SBATCH --time=24:00:00
set -euo pipefail
CONFIG=${CONFIG:-configs/grpo.py:qwen2.5-1.5b}
WORKDIR=${WORKDIR:-$HOME/critjax_runs/grpo_${SLURM_JOB_ID:-local}}
PORT=${PORT:-12355}
# Process 0 (SLURM_PROCID 0) runs on the allocation's first node and serves the coordinator there.
export CRITJAX_COORDINATOR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1):$PORT"
export CRITJAX_INIT_TIMEOUT=${CRITJAX_INIT_TIMEOUT:-600}
srun --kill-on-bad-exit=1 bash -c '
  export CRITJAX_NUM_PROCESSES=$SLURM_NTASKS CRITJAX_PROCESS_ID=$SLURM_PROCID
  if [ -z "${PER_HOST:-}" ]; then export CRITJAX_LOCAL_DEVICE_IDS=$SLURM_LOCALID; fi   # this task: one GPU
  exec python -m experiments.train --config="$0" --workdir="$1" --config.mesh.distributed=True "${@:2}"
' "$CONFIG" "$WORKDIR" "$@"
