#!/usr/bin/env bash
# Instructions the proxy core spends per message and per SIPp call, counted
# by callgrind (bench/callgrind.rs says what is measured and what is not).
#
#   bench/callgrind.sh                  # every scenario
#   bench/callgrind.sh invite ok200     # some: invite ok200 stateless-call stateful-call
#                                       #   stateless-call-nat stateful-call-nat
#   TOP=40 bench/callgrind.sh invite    # longer inclusive listing
#
# Prints, per scenario, the instructions per measured run (one message, or
# one whole call), the heap allocations per run, and the inclusive cost per
# run of the functions that are not inlined, heaviest first. The raw
# callgrind files stay in $OUT (default target/callgrind/) for
# `callgrind_annotate --inclusive=yes --tree=caller FILE`.
set -euo pipefail
cd "$(dirname "$0")/.."

command -v valgrind >/dev/null || { echo "valgrind missing: apt-get install -y valgrind" >&2; exit 1; }
TOP=${TOP:-25}
RUNS=1000 # bench/callgrind.rs RUNS
TARGET=${CARGO_TARGET_DIR:-target}
OUT=${OUT:-$TARGET/callgrind}
mkdir -p "$OUT"

BIN=$(cargo bench --bench callgrind --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m.get("target", {}).get("name") == "callgrind" and m.get("executable"):
        print(m["executable"])')
[ -x "$BIN" ] || { echo "could not build bench/callgrind.rs" >&2; exit 1; }

SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(invite ok200 stateless-call stateful-call stateless-call-nat stateful-call-nat)

for s in "${SCENARIOS[@]}"; do
    f="$OUT/$s.out"
    log=$(valgrind --tool=callgrind --toggle-collect='sf_step_*' \
        --callgrind-out-file="$f" "$BIN" "$s" 2>/dev/null)
    total=$(grep -E '^(summary|totals):' "$f" | head -1 | awk '{print $2}')
    echo "== $s: $((total / RUNS)) instructions per run ($total over $RUNS runs)"
    echo "   $log"
    executed=$(echo "$log" | sed -n 's/.*executed \([0-9]*\).*/\1/p')
    python3 bench/callgrind_report.py "$f" "$RUNS" "$TOP" "$executed"
done
