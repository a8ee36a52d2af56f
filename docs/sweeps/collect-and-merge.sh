#!/usr/bin/env bash
# Collects the shard run directories of a sweep and merges them into one report.
#   bash docs/sweeps/collect-and-merge.sh <where the shard dirs are> [sweep name]
# Shard directories on a shared volume need no copying; from a Kubernetes PVC copy them
# out first, e.g. with a helper pod mounting the claim:
#   kubectl cp <helper-pod>:/results ./runs
# Checkpoints (*.safetensors) stay in the shard directories; merge needs only
# config.json and jobs/*.json of each.
set -euo pipefail
SRC="${1:?usage: collect-and-merge.sh <dir with the shard run dirs> [sweep name]}"
SWEEP="${2:-sat-sweep}"
shopt -s nullglob
dirs=("$SRC"/"$SWEEP"-shard-*)
[ ${#dirs[@]} -gt 0 ] || { echo "no $SWEEP-shard-* directories under $SRC" >&2; exit 1; }
exec node bin/kinkless.mjs merge "${dirs[@]}" --name "$SWEEP" --out runs
