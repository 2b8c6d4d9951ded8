#!/bin/bash
# One validation-rows run of the tabular compression experiment (see RULE.md in this folder).
# usage: OUT=/path/to/val bash run_val.sh NAME DATASET SEED [--config.tabular... overrides]
# writes $OUT/<DATASET>_<NAME>_s<SEED>/results.json (the layout summarise.py reads).
set -e
NAME=$1; DS=$2; S=$3; shift 3
OUT=${OUT:-/tmp/gan_oob/val}
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
W=$OUT/${DS}_${NAME}_s$S
mkdir -p "$OUT"
[ -f "$W/results.json" ] && exit 0
cd "$ROOT"
OMP_NUM_THREADS=1 XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \
python -m metanas.main --config configs/gan_compression_tabular.py:cpu --workdir "$W" \
  --config.tabular.datasets="(\"$DS\",)" --config.seed="$S" --config.num_seeds=1 \
  --config.tabular.validation=True --config.tabular.transfer_sets='("train","train+gan")' \
  --config.tabular.mlp.num_steps=0 "$@" > "$W.log" 2>&1
