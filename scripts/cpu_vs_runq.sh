#!/usr/bin/env bash
# Q8_0 CPU decode tokens/s side by side in one run: `tinylm bench` on a llama2.c v2 (Q8_0) file,
# its weights kept quantized (cpu::q8, f32 activations), on 1 and 2 threads, against llama2.c's
# runq.c (which also quantizes the activations), built here from a llama2.c checkout you name
# (nothing of llama2.c is kept in this repository): `-Ofast -march=native` on one thread and
# `-Ofast -fopenmp -march=native` on two (OMP_NUM_THREADS=2). The s15m shape (random weights from
# `tinylm make-model`, converted with `tinylm convert --to llama2c --type q8_0`, group size 64),
# greedy from BOS, rounds alternating between the programs; medians. By hand, not in tests:
#   bash scripts/cpu_vs_runq.sh LLAMA2C_DIR [ROUNDS] [STEPS]
# Needs target/release/tinylm (cargo build --release -p tinylm-cli; or TINYLM=), the shared data
# (or TINYLM_DATA=), a C compiler with OpenMP,
# python3. (stories260K's v2 file is not used: runq cannot run it, see FIXTURES.md.)
set -euo pipefail
cd "$(dirname "$0")/.."
L2C=${1:?usage: cpu_vs_runq.sh LLAMA2C_DIR [ROUNDS] [STEPS]}
ROUNDS=${2:-5} STEPS=${3:-256}
TINYLM=${TINYLM:-target/release/tinylm}
CC=${CC:-cc}
TOK=${TINYLM_DATA:-../shared/data}/tokenizers/llama2/tokenizer.bin
[ -f "$L2C/runq.c" ] || { echo "no runq.c in $L2C" >&2; exit 1; }
[ -x "$TINYLM" ] || { echo "build $TINYLM first: cargo build --release -p tinylm-cli" >&2; exit 1; }
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT
"$CC" -Ofast -march=native "$L2C/runq.c" -lm -o "$OUT/runq"
"$CC" -Ofast -fopenmp -march=native "$L2C/runq.c" -lm -o "$OUT/runq_omp"
"$TINYLM" make-model --shape s15m -o "$OUT/s15m.bin" >/dev/null
"$TINYLM" convert "$OUT/s15m.bin" --to llama2c --type q8_0 -o "$OUT/s15m.q80.bin" >/dev/null
MODEL=$OUT/s15m.q80.bin

runq() { # binary threads -> tok/s
  OMP_NUM_THREADS=$2 "$1" "$MODEL" -z "$TOK" -t 0 -n "$STEPS" 2>&1 >/dev/null | sed -n 's/^achieved tok\/s: \([0-9]*\.\?[0-9]\?\).*/\1/p'
}
tinylm() { # threads -> decode tok/s
  "$TINYLM" bench "$MODEL" --backend cpu --threads "$1" --runs 1 -n "$STEPS" --json 2>/dev/null |
    python3 -c 'import json,sys; r=json.load(sys.stdin)["results"][0]; print(round(r["decode_tok_s"], 1))'
}

declare -A RES
LOAD_BEFORE=$(cut -d' ' -f1-3 /proc/loadavg)
for r in $(seq "$ROUNDS"); do
  RES[runq:1]+="$(runq "$OUT/runq" 1) "
  RES[tinylm:1]+="$(tinylm 1) "
  RES[runq-openmp:2]+="$(runq "$OUT/runq_omp" 2) "
  RES[tinylm:2]+="$(tinylm 2) "
done

median() { echo "$1" | tr ' ' '\n' | grep . | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs); load average before $LOAD_BEFORE, after $(cut -d' ' -f1-3 /proc/loadavg)"
echo "s15m Q8_0 (llama2.c v2, group 32), greedy decode of $STEPS tokens from BOS, $ROUNDS alternating rounds, medians"
echo "| program | threads | decode tok/s (median) | × runq same threads | runs |"
echo "| --- | --- | --- | --- | --- |"
for key in runq:1 tinylm:1 runq-openmp:2 tinylm:2; do
  v=${RES[$key]}
  t=${key##*:} prog=${key%:*}
  base=$(median "${RES[runq:1]}")
  [ "$t" = 2 ] && base=$(median "${RES[runq-openmp:2]}")
  med=$(median "$v")
  echo "| $prog | $t | $med | $(python3 -c "print(f'{$med / $base:.2f}')") | $v|"
done
