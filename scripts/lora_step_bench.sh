#!/usr/bin/env bash
# One LoRA training step (q,v), side by side in one run: `tinylm bench --finetune` on 1 and 2
# CPU threads and PyTorch + PEFT (scripts/lora_step_bench.py) on 1 and 2 threads, same shapes,
# rounds alternating; medians of the per-round medians. By hand, not in tests:
#   bash scripts/lora_step_bench.sh [ROUNDS]
# needs target/release/tinylm (or TINYLM=) and /work/venv-pretrain with peft (or PYTHON=; see
# lora_step_bench.py), the shared data (or TINYLM_DATA=);
# TINYLM_OTHER=path/to/another/tinylm adds its rows (e.g. a build before a change).
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
PY=${PYTHON:-/work/venv-pretrain/bin/python}
TINYLM=${TINYLM:-target/release/tinylm}
DATA=${TINYLM_DATA:-../shared/data}
declare -A RES
# name: tinylm model argument | python shape | rank | batch
CASES=("260K|$DATA/models/stories260K.bin|stories260K|4|1" "s15m|--shape s15m|s15m|8|4")
tinylm_ms() { # binary threads model-args rank batch
  TINYLM_THREADS=$2 "$1" bench $3 --backend cpu --finetune --rank "$4" --batch "$5" --seq 64 --runs 5 --json |
    "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["finetune"][0]["step_ms"], 2))'
}
for r in $(seq "$ROUNDS"); do
  for c in "${CASES[@]}"; do
    IFS='|' read -r name model shape rank batch <<<"$c"
    for t in 1 2; do
      RES[$name-tinylm-$t]+="$(tinylm_ms "$TINYLM" $t "$model" $rank $batch) "
      [ -n "${TINYLM_OTHER:-}" ] && RES[$name-other-$t]+="$(tinylm_ms "$TINYLM_OTHER" $t "$model" $rank $batch) "
      RES[$name-torch-$t]+="$("$PY" scripts/lora_step_bench.py --threads $t --shape $shape --rank $rank --batch $batch --seq 64 --steps 5 2>/dev/null |
        "$PY" -c 'import json,sys; print(round(json.load(sys.stdin)["step_ms"], 2))') "
    done
  done
done
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| shape | implementation | threads | step ms (median) | runs |"
echo "| --- | --- | --- | --- | --- |"
for k in $(printf '%s\n' "${!RES[@]}" | sort); do
  med=$(echo "${RES[$k]}" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}')
  IFS=- read -r name impl t <<<"$k"
  echo "| $name | $impl | $t | $med | ${RES[$k]}|"
done
