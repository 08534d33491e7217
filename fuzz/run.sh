#!/usr/bin/env bash
# Runs one cargo-fuzz target (or all) for a time, seeded from the repository's
# own SIP messages: testdata/corpus (SIPp, Kamailio, RFC 3261, RFC 3665) and
# testdata/rfc4475. Seeds are derived per target: whole messages for
# `message` and `framing`, SDP bodies for `sdp`, URIs for `uri`.
#   fuzz/run.sh [message|uri|framing|sdp|all] [seconds per target]
set -euo pipefail
cd "$(dirname "$0")"
targets=${1:-all}
secs=${2:-60}
[ "$targets" = all ] && targets="message uri framing sdp"
command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
python3 - <<'PY'
import os, re, glob
root = os.path.abspath("..")
files = glob.glob(f"{root}/testdata/corpus/*.sip") + glob.glob(f"{root}/testdata/rfc4475/*.dat")
def put(target, name, data):
    d = f"corpus/{target}"
    os.makedirs(d, exist_ok=True)
    open(f"{d}/seed-{name}", "wb").write(data)
for f in files:
    data = open(f, "rb").read()
    name = os.path.basename(f)
    put("message", name, data)
    put("framing", name, data + data)
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    if body.startswith(b"v="):
        put("sdp", name, body)
    uris = re.findall(rb"<([^<>\r\n]{3,200})>", data) + re.findall(rb"^[A-Z]+ (\S+) SIP/2.0", data, re.M)
    for i, u in enumerate(uris):
        put("uri", f"{name}-{i}", u)
PY
for t in $targets; do
  echo "== fuzz $t for ${secs}s"
  log=$(mktemp)
  status=0
  RUSTC_BOOTSTRAP=1 cargo fuzz run "$t" "corpus/$t" -- -max_total_time="$secs" -max_len=8192 >"$log" 2>&1 || status=$?
  grep -E "^(#[0-9]+\s+(DONE|INITED)|==|SUMMARY|Done)" "$log" || true
  if [ "$status" -ne 0 ]; then
    # A crash (artifact written) or a build failure: both fail the run.
    tail -n 30 "$log"
    echo "fuzz $t: failed (exit $status)"
    exit 1
  fi
  rm -f "$log"
done
