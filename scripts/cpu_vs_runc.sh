#!/usr/bin/env bash
# CPU decode tokens/s side by side in one run: `tinylm bench` (CPU path, 1 and 2 threads) against
# llama2.c's run.c, built here from a llama2.c checkout you name (nothing of llama2.c is kept in
# this repository): `-Ofast -march=native` on one thread and `-Ofast -fopenmp -march=native` on two
# (OMP_NUM_THREADS=2). stories260K and the s15m shape (random weights written by `tinylm
# make-model`), greedy from BOS, rounds alternating between the programs; medians. By hand, not in
# tests:
#   bash scripts/cpu_vs_runc.sh LLAMA2C_DIR [ROUNDS] [STEPS]
# LLAMA2C_DIR holds run.c (a clone of github.com/karpathy/llama2.c). TINYLM_OTHER=/path/to/tinylm
# adds rows for another build (e.g. an earlier commit) in the same rounds. Needs
# target/release/tinylm (cargo build --release -p tinylm-cli; or TINYLM=), the shared data (or
# TINYLM_DATA=), a C compiler with OpenMP, python3.
set -euo pipefail
cd "$(dirname "$0")/.."
L2C=${1:?usage: cpu_vs_runc.sh LLAMA2C_DIR [ROUNDS] [STEPS]}
ROUNDS=${2:-5} STEPS=${3:-256}
TINYLM=${TINYLM:-target/release/tinylm}
CC=${CC:-cc}
DATA=${TINYLM_DATA:-../shared/data}
[ -f "$L2C/run.c" ] || { echo "no run.c in $L2C" >&2; exit 1; }
[ -x "$TINYLM" ] || { echo "build $TINYLM first: cargo build --release -p tinylm-cli" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$CC" -Ofast -march=native "$L2C/run.c" -lm -o "$OUT/run"
"$CC" -Ofast -fopenmp -march=native "$L2C/run.c" -lm -o "$OUT/run_omp"
"$TINYLM" make-model --shape s15m -o "$OUT/s15m.bin" >/dev/null
MODELS=("stories260K:$DATA/models/stories260K.bin:$DATA/tokenizers/tok512.bin"
  "s15m:$OUT/s15m.bin:$DATA/tokenizers/llama2/tokenizer.bin")

runc() { # binary threads model tokenizer -> tok/s
  OMP_NUM_THREADS=$2 "$1" "$3" -z "$4" -t 0 -n "$STEPS" 2>&1 >/dev/null | sed -n 's/^achieved tok\/s: \([0-9]*\.\?[0-9]\?\).*/\1/p'
}
tinylm() { # binary threads model -> decode tok/s
  "$1" bench "$3" --backend cpu --threads "$2" --runs 1 -n "$STEPS" --json 2>/dev/null |
    python3 -c 'import json,sys; print(round(json.load(sys.stdin)["results"][0]["decode_tok_s"], 1))'
}

declare -A RES
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  for m in "${MODELS[@]}"; do
    IFS=: read -r name model tok <<<"$m"
    RES[$name:run.c:1]+="$(runc "$OUT/run" 1 "$model" "$tok") "
    RES[$name:tinylm:1]+="$(tinylm "$TINYLM" 1 "$model") "
    RES[$name:run.c-openmp:2]+="$(runc "$OUT/run_omp" 2 "$model" "$tok") "
    RES[$name:tinylm:2]+="$(tinylm "$TINYLM" 2 "$model") "
    if [ -n "${TINYLM_OTHER:-}" ]; then
      RES[$name:other:1]+="$(tinylm "$TINYLM_OTHER" 1 "$model") "
      RES[$name:other:2]+="$(tinylm "$TINYLM_OTHER" 2 "$model") "
    fi
  done
done

median() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "greedy decode of $STEPS tokens from BOS, $ROUNDS alternating rounds, medians"
echo "| model | program | threads | decode tok/s (median) | × run.c same threads | runs |"
echo "| --- | --- | --- | --- | --- | --- |"
for m in "${MODELS[@]}"; do
  name=${m%%:*}
  for key in run.c:1 tinylm:1 other:1 run.c-openmp:2 tinylm:2 other:2; do
    v=${RES[$name:$key]:-}
    [ -n "$v" ] || continue
    t=${key##*:} prog=${key%:*}
    base=$(median "${RES[$name:run.c:1]}")
    [ "$t" = 2 ] && base=$(median "${RES[$name:run.c-openmp:2]}")
    med=$(python3 -c "print(round($(median "$v"), 1))")
    [ "$prog" = other ] && prog="tinylm ($TINYLM_OTHER)"
    echo "| $name | $prog | $t | $med | $(python3 -c "print(f'{$med / $base:.2f}')") | $v|"
  done
done
