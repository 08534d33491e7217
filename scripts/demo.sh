#!/usr/bin/env bash
# Live demo: two SIPp UAS backends, sipfront in front of them, and a SIPp
# caller placing calls through sipfront. Prints calls made, failed, and the
# share each backend got. Everything runs on 127.0.0.1 and stops by itself.
#   scripts/demo.sh [calls] [rate]        (defaults: 2000 calls at 200/s)
set -euo pipefail
cd "$(dirname "$0")/.."
CALLS=${1:-2000}
RATE=${2:-200}
PORT=${DEMO_PORT:-15060}
B1=$((PORT + 10)); B2=$((PORT + 20))
WORK=$(mktemp -d /tmp/sipfront-demo.XXXXXX)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

if ! command -v sipp >/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing SIPp (Debian package sip-tester)..."
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq sip-tester >/dev/null
  else
    echo "SIPp is needed: apt-get install sip-tester" >&2; exit 1
  fi
fi
[ -x target/release/sipfront ] || cargo build --release -q

for p in $B1 $B2; do
  (cd "$WORK" && exec sipp -sn uas -i 127.0.0.1 -p "$p" -nostdin >/dev/null 2>&1) &
  PIDS+=($!)
done
target/release/sipfront --listen "udp:127.0.0.1:$PORT" \
  --backend "sip:127.0.0.1:$B1" --backend "sip:127.0.0.1:$B2" \
  --algorithm call-id --workers "${DEMO_WORKERS:-2}" 2>"$WORK/sipfront.log" &
SF=$!; PIDS+=($SF)
sleep 1
echo "sipfront on udp:127.0.0.1:$PORT -> sip:127.0.0.1:$B1, sip:127.0.0.1:$B2; placing $CALLS calls at $RATE/s"
set +e
(cd "$WORK" && timeout $((CALLS / RATE + 60)) sipp -sn uac "127.0.0.1:$PORT" -i 127.0.0.1 -p $((PORT + 30)) \
  -r "$RATE" -m "$CALLS" -d 0 -nostdin -trace_stat -stf uac.csv >/dev/null 2>&1)
UAC_EXIT=$?
set -e
sleep 1.5   # let the backends write their final statistics row
kill -INT "$SF"; wait "$SF" 2>/dev/null || true

col() { # file column-name: value of the last row
  awk -F';' -v c="$2" 'NR==1 { for (i=1;i<=NF;i++) if ($i==c) k=i } END { print $k }' "$1"
}
ok=$(col "$WORK/uac.csv" "SuccessfulCall(C)")
failed=$(col "$WORK/uac.csv" "FailedCall(C)")
# sipfront's per-backend request counters (each SIPp call is INVITE, ACK, BYE).
r1=$(awk '/forwarded_backend_0 /{print $NF}' "$WORK/sipfront.log"); r1=${r1:-0}
r2=$(awk '/forwarded_backend_1 /{print $NF}' "$WORK/sipfront.log"); r2=${r2:-0}
total=$((r1 + r2))
echo
echo "calls made:      $ok of $CALLS"
echo "calls failed:    $failed"
if [ "$total" -gt 0 ]; then
  echo "backend $B1:  $((r1 / 3)) calls, $r1 requests ($((100 * r1 / total))%)"
  echo "backend $B2:  $((r2 / 3)) calls, $r2 requests ($((100 * r2 / total))%)"
fi
echo "sipfront counters:"
sed -n '/final counters/,$p' "$WORK/sipfront.log" | tail -n +2 | sed 's/^/  /'
echo "(logs in $WORK)"
[ "$UAC_EXIT" = 0 ] && [ "$failed" = 0 ]
