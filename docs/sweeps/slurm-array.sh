#!/usr/bin/env bash
# `kinkless reproduce sat` as a Slurm job array: task i runs shard i/N. Submit from the
# repository root on a shared filesystem:
#   sbatch --array=0-3 docs/sweeps/slurm-array.sh        # N = 4 tasks, ids 0..3
# then, when every task has finished:
#   sbatch --dependency=afterok:<jobid> --wrap 'node bin/kinkless.mjs merge runs/sat-sweep-shard-* --name sat-sweep'
# Keep the reproduce flags identical in every task: the shards must share one plan.
#SBATCH --job-name=kinkless-sat
#SBATCH --cpus-per-task=2
#SBATCH --mem=6G
#SBATCH --time=02:00:00
#SBATCH --output=runs/slurm-%A_%a.out
#SBATCH --requeue
set -euo pipefail
: "${SLURM_ARRAY_TASK_ID:?submit with sbatch --array=0-(N-1)}"
# N: the array's size (ids must run 0..N-1)
N="${SLURM_ARRAY_TASK_COUNT:?}"
SWEEP="${SWEEP:-sat-sweep}"
QUIET=1 bash scripts/setup-software-gpu.sh
exec node bin/kinkless.mjs reproduce sat --seeds 3 \
  --shard "${SLURM_ARRAY_TASK_ID}/${N}" \
  --name "${SWEEP}-shard-${SLURM_ARRAY_TASK_ID}" --out runs --resume
