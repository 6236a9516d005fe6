#!/usr/bin/env bash
# One call measures everything on a lent GPU machine: `tinylm bench` (greedy decode from BOS and
# a 256-position prefill, medians of 3 runs) for stories260K and the random s15m/s42m/s110m
# shapes, on the GPU (three-dispatch layer, then the five-dispatch one for comparison) and on
# the CPU (1 thread and every core), s15m as four sequences in one pass and as GGUF Q8_0 and Q4_0
# on the GPU, all in about 8
# minutes at most (each bench has its own time limit). Prints a table per model and, when $OUT is set, writes each bench's JSON there.
#   bash scripts/device-bench.sh [TINYLM_BIN]
# TINYLM_BIN (or TINYLM=): a release `tinylm` built elsewhere (the device machine has no Rust);
# without either the script builds one with cargo when cargo is present, else uses
# target/release/tinylm. The shared data from TINYLM_DATA= (default ../shared/data), or
# stories260K.bin itself from TINYLM_STORIES=; skipped with a note when missing. STEPS (256)
# and RUNS (3) override the sizes.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${1:-${TINYLM:-}}
if [ -z "$BIN" ]; then
  if command -v cargo >/dev/null; then
    cargo build --release -p tinylm-cli >&2 || exit 1
  fi
  BIN=target/release/tinylm
fi
[ -x "$BIN" ] || { echo "no tinylm binary at $BIN (pass one, or build: cargo build --release -p tinylm-cli)" >&2; exit 1; }
STORIES=${TINYLM_STORIES:-${TINYLM_DATA:-../shared/data}/models/stories260K.bin}
STEPS=${STEPS:-256} RUNS=${RUNS:-3}
CORES=$(nproc 2>/dev/null || echo 2)
if [ -z "${XDG_RUNTIME_DIR:-}" ] || [ ! -w "${XDG_RUNTIME_DIR}" ]; then
  XDG_RUNTIME_DIR=$(mktemp -d) && chmod 700 "$XDG_RUNTIME_DIR" && export XDG_RUNTIME_DIR
fi
JSON_DIR=${OUT:-$(mktemp -d)}
mkdir -p "$JSON_DIR"
command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader
"$BIN" --version 2>/dev/null || true
START=$(date +%s)

# bench NAME LIMIT_S ARGS...: one bench, its JSON to $JSON_DIR/NAME.json, its table printed;
# a bench past its limit is stopped and reported. The limits add up to 8 minutes.
bench() {
  local name=$1 limit=$2
  shift 2
  local t0
  t0=$(date +%s)
  if timeout "$limit" "$BIN" bench "$@" --runs "$RUNS" --json >"$JSON_DIR/$name.json" 2>"$JSON_DIR/$name.err"; then
    echo "== $name ($(($(date +%s) - t0)) s)"
    table "$JSON_DIR/$name.json"
  else
    echo "== $name: FAILED or past ${limit}s (exit $?); stderr:"
    tail -5 "$JSON_DIR/$name.err"
  fi
}

# The bench JSON as a table (python3 where present, else the JSON itself).
table() {
  if command -v python3 >/dev/null; then
    python3 - "$1" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
print(f"model: {v['model']}; machine: {v['machine']}")
print(f"{'backend':<58} {'thr':>4} {'prefill tok/s':>14} {'decode tok/s':>13} {'disp/tok':>9} {'submits/tok':>12}")
for r in v["results"]:
    print(f"{r['backend'][:58]:<58} {str(r['threads'] or '-'):>4} {r['prefill_tok_s']:>14.0f} {r['decode_tok_s']:>13.1f} {r['dispatches_per_token']:>9.0f} {r['submits_per_token']:>12.2f}")
PY
  else
    cat "$1"
  fi
}

MODELS=()
if [ -f "$STORIES" ]; then MODELS+=("stories260K:$STORIES"); else echo "note: no stories260K at $STORIES (set TINYLM_STORIES)"; fi
MODELS+=("s15m:--shape s15m" "s42m:--shape s42m" "s110m:--shape s110m")
GPU=(-n "$STEPS" --prompt-len 256)
for m in "${MODELS[@]}"; do
  name=${m%%:*} src=${m#*:}
  # GPU limit, CPU limit and CPU sizes: the big shapes on the CPU decode 64 tokens on every
  # core only (one thread would take minutes).
  case $name in
    stories260K) lim=20 clim=30 cpu=(-n "$STEPS" --prompt-len 256 --threads "1,$CORES") ;;
    s15m) lim=30 clim=30 cpu=(-n "$STEPS" --prompt-len 256 --threads "1,$CORES") ;;
    s42m) lim=40 clim=40 cpu=(-n 64 --prompt-len 64 --threads "$CORES") ;;
    *) lim=60 clim=40 cpu=(-n 64 --prompt-len 64 --threads "$CORES") ;;
  esac
  # s15m also as four sequences decoded together (one batched pass a step, a KV cache each).
  seqs=()
  [ "$name" = s15m ] && seqs=(--sequences 4)
  # shellcheck disable=SC2086 # src is a path or "--shape NAME"
  bench "$name-gpu" "$lim" $src --backend gpu "${GPU[@]}" "${seqs[@]}"
  # shellcheck disable=SC2086
  bench "$name-gpu-five" "$lim" $src --backend gpu --five-dispatch "${GPU[@]}"
  # shellcheck disable=SC2086
  bench "$name-cpu" "$clim" $src --backend cpu "${cpu[@]}"
done
# Quantized weights on the GPU: the s15m model as GGUF Q8_0 (int8 words) and Q4_0 (the file's own
# blocks, decoded where they lie), written here by `tinylm convert`, against the f32 rows above.
QDIR=$(mktemp -d)
if "$BIN" make-model --shape s15m -o "$QDIR/s15m.bin" >/dev/null; then
  for t in q8_0 q4_0; do
    "$BIN" convert "$QDIR/s15m.bin" --to gguf --type "$t" -o "$QDIR/s15m.$t.gguf" >/dev/null &&
      bench "s15m-$t-gpu" 20 "$QDIR/s15m.$t.gguf" --backend gpu "${GPU[@]}"
  done
fi
rm -rf "$QDIR"
echo "total $(($(date +%s) - START)) s; JSON in $JSON_DIR"
