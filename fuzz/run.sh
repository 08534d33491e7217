#!/usr/bin/env bash
# Runs one cargo-fuzz target (or all) for a time, seeded from the repository's
# own SIP messages: testdata/corpus (SIPp, Kamailio, RFC 3261, RFC 3665) and
# testdata/rfc4475. Seeds are derived per target: whole messages for
# `message` and `framing`, SDP bodies for `sdp`, URIs for `uri`. The
# rtpproxy targets are seeded from the control requests Kamailio sent
# (rtpproxy/tests/fixtures/{classic,ng}), else from literal commands.
#   fuzz/run.sh [message|uri|framing|sdp|proxy|admin_http|rtpproxy_classic|rtpproxy_ng|nat_alias|all] [seconds per target]
# `proxy` gets datagram sequences: each message from the client (first byte
# 0) and the responses of the corpus from a backend (first byte 1), joined
# by NUL NUL.
set -euo pipefail
cd "$(dirname "$0")"
targets=${1:-all}
secs=${2:-60}
[ "$targets" = all ] && targets="message uri framing sdp proxy admin_http rtpproxy_classic rtpproxy_ng nat_alias"
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
    put("proxy", name, b"\x00" + data)
for i, v in enumerate([b"203.0.113.5~40312~1", b"[2001:db8::7]~5062~2~2", b"2001:db8::7~5062~2",
        b"sip:198.51.100.9:1024", b"\"sip:192.0.2.1:5070;transport=tcp\"", b"sip:[2001:db8::1]:5061%3Btransport=tls",
        b"sip:alice@10.0.0.5:5060;alias=203.0.113.5~40312~1;ob",
        b"sip:alice@10.0.0.5;received=sip:203.0.113.5:40312",
        b"sip:198.51.100.10:5060;lr;alias=203.0.113.5~40312~1"]):
    put("nat_alias", f"seed-{i}", v)
responses = [open(f, "rb").read() for f in files if open(f, "rb").read().startswith(b"SIP/2.0 ")]
requests = [open(f, "rb").read() for f in files if not open(f, "rb").read().startswith(b"SIP/2.0 ")]
for i, req in enumerate(requests):
    seq = [b"\x00" + req] + [b"\x01" + r for r in responses[i % max(1, len(responses)):][:3]]
    put("proxy", f"seq-{i}", b"\x00\x00".join(seq))
# rtpproxy_classic: one command a seed, plus each call's commands joined by
# '|' (the target runs them in order); rtpproxy_ng: each request, plus each
# call's documents joined by 0xff (the target adds a cookie to each piece).
fx = f"{root}/rtpproxy/tests/fixtures"
classic = {os.path.basename(f): open(f, "rb").read() for f in sorted(glob.glob(f"{fx}/classic/*.txt"))}
ng = {os.path.basename(f): open(f, "rb").read() for f in sorted(glob.glob(f"{fx}/ng/*.bin"))}
if not classic:
    classic = {"V": b"1_0 V", "VF": b"1_1 VF 20050322", "U": b"1_2 Uc8,101 c@h 127.0.0.2 42010 ft;1",
               "L": b"1_3 L c@h 127.0.0.3 42020 ft;1 tt;1", "Q": b"1_4 Qv c@h ft;1 tt", "D": b"1_5 D c@h ft tt"}
if not ng:
    sdp = b"v=0\r\no=u 1 1 IN IP4 127.0.0.2\r\ns=-\r\nc=IN IP4 127.0.0.2\r\nt=0 0\r\nm=audio 42010 RTP/AVP 8\r\n"
    ng = {"ping": b"1_1 d7:command4:pinge",
          "x-offer": b"1_2 d3:sdp%d:%s7:call-id1:c8:from-tag1:f7:command5:offere" % (len(sdp), sdp),
          "x-delete": b"1_3 d7:call-id1:c8:from-tag1:f7:command6:deletee"}
# admin_http: the requests the admin API and `sipfront ctl` exchange.
for i, req in enumerate([
        b"GET /health HTTP/1.1\r\nHost: 127.0.0.1:9090\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nAuthorization: Bearer s3cret\r\n\r\n",
        b"POST /backends/default/sip%3A127.0.0.1%3A5070/state HTTP/1.1\r\nContent-Length: 8\r\n\r\ndisabled",
        b"POST /reload HTTP/1.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"]):
    put("admin_http", f"req-{i}", req)
for name, data in classic.items():
    put("rtpproxy_classic", name, data)
for name, data in ng.items():
    put("rtpproxy_ng", name, data)
def calls(files):
    by = {}
    for name, data in files.items():
        by.setdefault(name.split("-")[0], []).append((name, data))
    return by
order = lambda n: next((i for i, k in enumerate(["probe", "U", "offer", "L", "answer", "Q", "query", "D", "delete"]) if k in n), 9)
for call, items in calls(classic).items():
    put("rtpproxy_classic", f"call-{call}", b"|".join(d for _, d in sorted(items, key=lambda x: order(x[0]))))
for call, items in calls(ng).items():
    docs = [d.split(b" ", 1)[1] if b" " in d else d for _, d in sorted(items, key=lambda x: order(x[0]))]
    put("rtpproxy_ng", f"call-{call}", b"\xff".join(docs))
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
