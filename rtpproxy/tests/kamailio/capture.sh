#!/usr/bin/env bash
# Regenerates rtpproxy/tests/fixtures/{ng,classic}: the exact control requests
# Debian's Kamailio sends to a media relay, for the codecs' unit tests.
#
# For each protocol: recorder.py stands in for the relay (it answers like
# rtpengine / rtpproxy would, so Kamailio goes on with the call, and writes
# every distinct request byte-exact), Kamailio runs relay.cfg with the
# rtpengine (ng) or rtpproxy (classic) module pointed at it, and SIPp places one
# call per flag set (uac.xml -> Kamailio -> uas.xml), the scenario name being
# the R-URI user that relay.cfg maps to the relay flags. The SDPs name media at
# 127.0.0.2 (caller) and 127.0.0.3 (callee) while SIP comes from 127.0.0.1, so
# the fixtures tell the SDP address from the SIP source address (received-from,
# rtpproxy's default); nothing listens there, no media is sent.
#
# The classic protocol is captured twice: once against a recorder that answers
# VF 1 for re-packetization and codec lists (sippy rtpproxy does; Kamailio then
# adds c<pt,...> modifiers), once against one that answers VF 0 for them (as
# rtpengine's legacy listener does; plain U/L), scenario "clnocaps".
#
# Usage: rtpproxy/tests/kamailio/capture.sh [OUT_DIR]
#   OUT_DIR defaults to rtpproxy/tests/fixtures; ng/*.bin and classic/*.txt in
#   it are replaced. Ports: SIP 41060 (Kamailio), 41070 (UAS), 41080 (UAC),
#   relay control 41222. Needs kamailio, sipp, python3.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
out="${1:-$here/../fixtures}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

KAM_PORT=41060
UAS_PORT=41070
UAC_PORT=41080
CTL_PORT=41222

for tool in kamailio sipp python3; do
  command -v "$tool" >/dev/null || { echo "capture.sh: $tool not installed" >&2; exit 1; }
done

work="$(mktemp -d /tmp/sipfront-capture.XXXXXX)"
pids=()
stop_all() {
  # Our own children only, by PID: other sessions run kamailio/sipp here too.
  local p
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  pids=()
}
cleanup() {
  stop_all
  [ -n "${KEEP_WORK:-}" ] && echo "work dir kept: $work" >&2 || rm -rf "$work"
}
trap cleanup EXIT

wait_for() { # wait_for FILE PATTERN SECONDS
  local i
  for ((i = 0; i < $3 * 10; i++)); do
    grep -q "$2" "$1" 2>/dev/null && return 0
    sleep 0.1
  done
  echo "capture.sh: timed out waiting for '$2' in $1" >&2
  cat "$1" >&2 || true
  return 1
}

capture() { # capture ng|classic|classic-nocaps SCENARIO...
  local run="$1" proto="${1%-nocaps}" caps="20040107,20050322,20060704,20071116,20081102"
  shift
  [ "$run" = classic-nocaps ] && caps="20040107,20050322,20060704"
  local dir="$work/$run"
  mkdir -p "$dir/rec" "$dir/run"

  python3 "$here/recorder.py" --proto "$proto" --listen "127.0.0.1:$CTL_PORT" \
    --caps "$caps" --out "$dir/rec" --log "$dir/requests.log" 2>"$dir/recorder.err" &
  pids+=($!)
  wait_for "$dir/recorder.err" "recorder ready" 10

  local defs=(-A "RELAY_SOCK=\"udp:127.0.0.1:$CTL_PORT\"" -A "UAS_URI=\"sip:127.0.0.1:$UAS_PORT\"")
  [ "$proto" = ng ] && defs+=(-A WITH_NG)
  kamailio -c -f "$here/relay.cfg" "${defs[@]}" -l "udp:127.0.0.1:$KAM_PORT" >"$dir/kamailio-check.log" 2>&1 \
    || { cat "$dir/kamailio-check.log" >&2; exit 1; }
  kamailio -DD -E -f "$here/relay.cfg" "${defs[@]}" -l "udp:127.0.0.1:$KAM_PORT" \
    -P "$dir/run/kamailio.pid" -Y "$dir/run" -w "$dir/run" -m 32 -M 8 2>"$dir/kamailio.log" &
  pids+=($!)
  wait_for "$dir/kamailio.log" "INFO: <core> \[main.c" 10 || true
  sleep 1 # the children probe the relay (V/VF, ping) as they start

  sipp -sf "$here/uas.xml" -i 127.0.0.1 -p "$UAS_PORT" -m "$#" -nostdin -timeout 60 \
    -key rtp_ip 127.0.0.3 -key rtp_port 42020 -key media_file "$dir/media.txt" \
    >"$dir/uas.log" 2>&1 &
  local uas=$!
  pids+=($uas)
  sleep 0.5

  local scn
  for scn in "$@"; do
    # The Call-ID starts with the scenario name: recorder.py names files by it.
    sipp -sf "$here/uac.xml" -s "$scn" -i 127.0.0.1 -p "$UAC_PORT" -m 1 -d 200 \
      -cid_str "$scn-%u-%p@%s" -nostdin -timeout 20 \
      -key rtp_ip 127.0.0.2 -key rtp_port 42010 -key media_file "$dir/media.txt" \
      "127.0.0.1:$KAM_PORT" >"$dir/uac-$scn.log" 2>&1 \
      || { echo "capture.sh: call $scn failed" >&2; cat "$dir/kamailio.log" >&2; exit 1; }
  done
  wait "$uas" || { echo "capture.sh: UAS failed" >&2; exit 1; }
  sleep 0.5
  stop_all # frees the control port for the next protocol's recorder
}

capture ng ngbasic ngtrust ngasym ngsource
capture classic clbasic clsym clasym clbridge
capture classic-nocaps clnocaps

# Replace only after both captures succeeded.
rm -rf "$out/ng" "$out/classic"
mkdir -p "$out/ng" "$out/classic"
cp "$work/ng/rec/"*.bin "$out/ng/"
cp "$work/classic/rec/"*.txt "$out/classic/"
# Its probes are the same requests as above: only the call's commands.
cp "$work/classic-nocaps/rec/"clnocaps-*.txt "$out/classic/"
echo "captured into $out:"
ls -l "$out/ng" "$out/classic"
