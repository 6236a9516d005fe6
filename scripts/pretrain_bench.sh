#!/usr/bin/env bash
# Training tokens/s for the stories260K shape, side by side in one run: `tinylm pretrain` on 1
# and 2 CPU threads and on the GPU path (when it has one), and PyTorch on this CPU (1 and 2
# threads), same shape, batch and sequence, rounds alternating; medians. By hand, not in tests:
#   bash scripts/pretrain_bench.sh [ROUNDS] [BATCH] [SEQ] [STEPS]
# needs target/release/tinylm and /work/venv-pretrain (see scripts/pretrain_fixture.py).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3} BATCH=${2:-8} SEQ=${3:-256} STEPS=${4:-10}
PY=${PYTHON:-/work/venv-pretrain/bin/python}
TEXT=${TINYLM_DATA:-../shared/data}/corpora/tinystories/TinyStories-valid.head.txt
TINYLM=${TINYLM:-target/release/tinylm}
OUT=$(mktemp -d)
declare -A RES
for r in $(seq "$ROUNDS"); do
  for t in 1 2; do
    v=$(TINYLM_THREADS=$t "$TINYLM" pretrain --shape tiny64 -z public/models/tok512.bin --text-file "$TEXT" \
        --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --warmup 0 -o "$OUT/t$t" | sed -n 's/.*(\([0-9]*\) training tokens\/s).*/\1/p')
    RES[tinylm-$t]+="$v "
    v=$("$PY" scripts/pretrain_bench.py --threads "$t" --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" |
        "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["tokens_per_s"]))')
    RES[torch-$t]+="$v "
  done
  # The GPU trainer (its adapter named in the table; on a machine without a GPU that is Mesa's
  # lavapipe, a CPU emulation: not a GPU speed).
  line=$("$TINYLM" pretrain --shape tiny64 -z public/models/tok512.bin --text-file "$TEXT" --backend gpu \
      --batch "$BATCH" --seq "$SEQ" --steps "$STEPS" --warmup 0 -o "$OUT/gpu" 2>/dev/null || true)
  GPU_NAME=$(echo "$line" | sed -n 's/.* on the GPU (\(.*\))$/\1/p' | head -1)
  v=$(echo "$line" | sed -n 's/.*(\([0-9]*\) training tokens\/s).*/\1/p')
  RES[gpu-1]+="${v:--} "
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| implementation | threads | training tokens/s (median) | runs |"
echo "| --- | --- | --- | --- |"
for k in tinylm-1 tinylm-2 torch-1 torch-2 gpu-1; do
  med=$(echo "${RES[$k]}" | tr ' ' '\n' | grep '^[0-9]' | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  name=${k%-*}
  [ "$name" = gpu ] && name="tinylm pretrain --backend gpu (${GPU_NAME:-no GPU})"
  echo "| $name | ${k#*-} | ${med:--} | ${RES[$k]}|"
done
rm -rf "$OUT"
