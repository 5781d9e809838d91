#!/bin/bash
# GRPO on a TPU VM pod slice: every worker runs the same command; JAX reads the coordinator and each
# worker's id from the TPU environment (no CRITJAX_* variables needed). Run from a workstation:
#
#   TPU=my-v5p-32 ZONE=us-east5-a WORKDIR=/mnt/shared/grpo bash experiments/tpu_pod_grpo.sh \
#       --config.mesh.data=1 --config.mesh.fsdp=16
#
# Fields to set for the slice: mesh.data x mesh.fsdp x mesh.tensor = every chip of every worker (16 on
# a v5p-32: 4 workers x 4 chips); rollout.prompts_per_step x rollout.group_size rows per step, a
# multiple of the worker count; rl.micro_batch_size for memory. WORKDIR: a directory every worker
# mounts at the same path (NFS, Filestore); the code is installed at REPO (with .venv) on every worker.
set -euo pipefail
: "${TPU:?the TPU VM name}" "${ZONE:?its zone}" "${WORKDIR:?a directory every worker mounts}"
CONFIG=${CONFIG:-configs/grpo.py:qwen2.5-1.5b}
REPO=${REPO:-critjax}
gcloud compute tpus tpu-vm ssh "$TPU" --zone="$ZONE" --worker=all --command="cd $REPO && \
  .venv/bin/python -m experiments.train --config=$CONFIG --workdir=$WORKDIR --config.mesh.distributed=True $*"
