#!/usr/bin/env python3
"""A stand-in relay that records what Kamailio sends it.

It listens on one UDP port and answers like the real relay would, so that
Kamailio's rtpengine or rtpproxy module goes on with the call:

  --proto ng       bencoded ng protocol (rtpengine module): ping -> pong,
                   offer/answer -> ok + the SDP with c=/m= rewritten to the
                   recorder's media address, delete -> ok, query -> ok.
  --proto classic  classic rtpproxy protocol (rtpproxy module): V -> 20040107,
                   VF -> 1 for the capabilities of --caps, U/L -> "port addr",
                   D -> 0, Q -> five counters.

Every distinct request (compared without its cookie, since the cookie holds a
pid and a sequence number) is written byte-exact, as received, to
OUT/<name>.bin (ng) or OUT/<name>.txt (classic). The name says what the request
is: <call-prefix>-<command> where <call-prefix> is the part of the Call-ID
before the first '-' (capture.sh gives each SIPp call a Call-ID that starts with
the scenario's name), or probe-<V|VF-date>/ping for the startup probes.

No media is relayed: this is a control-protocol recorder only.
"""

import argparse
import os
import re
import signal
import socket
import sys


# --- bencode: just what the ng protocol needs -------------------------------
def bdecode(data, i=0):
    c = data[i:i + 1]
    if c == b"i":
        end = data.index(b"e", i)
        return int(data[i + 1:end]), end + 1
    if c == b"l":
        i += 1
        out = []
        while data[i:i + 1] != b"e":
            v, i = bdecode(data, i)
            out.append(v)
        return out, i + 1
    if c == b"d":
        i += 1
        out = {}
        while data[i:i + 1] != b"e":
            k, i = bdecode(data, i)
            v, i = bdecode(data, i)
            out[k] = v
        return out, i + 1
    colon = data.index(b":", i)
    n = int(data[i:colon])
    start = colon + 1
    return data[start:start + n], start + n


def bencode(v):
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, str):
        v = v.encode()
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, list):
        return b"l" + b"".join(bencode(x) for x in v) + b"e"
    if isinstance(v, dict):
        return b"d" + b"".join(bencode(k) + bencode(x) for k, x in v.items()) + b"e"
    raise TypeError(type(v))


class Ports:
    """Hands out fake relay ports, even, in pairs, like a relay would."""

    def __init__(self, low):
        self.next = low

    def take(self):
        p = self.next
        self.next += 2
        return p


def rewrite_sdp(sdp, addr, ports):
    """c= and m= rewritten to the relay's address and fresh ports, as rtpengine does."""
    out = []
    for line in sdp.split(b"\r\n"):
        if line.startswith(b"c=IN IP4 "):
            line = b"c=IN IP4 " + addr.encode()
        elif line.startswith(b"m="):
            parts = line.split(b" ")
            parts[1] = str(ports.take()).encode()
            line = b" ".join(parts)
        out.append(line)
    return b"\r\n".join(out)


def safe(name):
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def call_prefix(callid):
    return safe(callid.split("-", 1)[0]) if callid else "nocall"


def handle_ng(body, args, ports):
    """Returns (name, reply document)."""
    doc, _ = bdecode(body)
    cmd = doc.get(b"command", b"").decode()
    callid = doc.get(b"call-id", b"").decode()
    if cmd == "ping":
        return "ping", {"result": "pong"}
    name = "%s-%s" % (call_prefix(callid), safe(cmd))
    if cmd in ("offer", "answer"):
        sdp = rewrite_sdp(doc.get(b"sdp", b""), args.advertise, ports)
        return name, {"result": "ok", "sdp": sdp}
    if cmd == "query":
        return name, {"result": "ok", "created": 0, "totals": {
            "RTP": {"packets": 0, "bytes": 0, "errors": 0},
            "RTCP": {"packets": 0, "bytes": 0, "errors": 0}}}
    return name, {"result": "ok"}


def handle_classic(body, args, ports):
    """Returns (name, reply bytes) for one command (cookie already removed)."""
    toks = body.split()
    if not toks:
        return "empty", b"E5\n"
    cmd = toks[0].decode(errors="replace")
    letter = cmd[:1].upper()
    if letter == "V":
        if cmd.upper() == "VF" and len(toks) > 1:
            date = toks[1].decode(errors="replace")
            return "probe-VF-" + safe(date), b"1\n" if date in args.caps else b"0\n"
        return "probe-V", b"20040107\n"
    callid = toks[1].decode(errors="replace") if len(toks) > 1 else ""
    name = "%s-%s" % (call_prefix(callid), safe(cmd))
    if letter in ("U", "L"):
        return name, b"%d %s\n" % (ports.take(), args.advertise.encode())
    if letter == "D":
        return name, b"0\n"
    if letter == "Q":
        return name, b"60 0 0 0 0\n"
    return name, b"E0\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--proto", choices=["ng", "classic"], required=True)
    ap.add_argument("--listen", default="127.0.0.1:41222")
    ap.add_argument("--out", required=True, help="directory for the recorded requests")
    ap.add_argument("--advertise", default="127.0.0.1",
                    help="address written into SDP / replies")
    ap.add_argument("--port-base", type=int, default=42000)
    ap.add_argument("--caps", default="20040107,20050322,20060704,20071116,20081102",
                    help="VF capabilities answered 1 (classic)")
    ap.add_argument("--log", default=None, help="append one line per request here")
    args = ap.parse_args()
    args.caps = set(args.caps.split(","))
    os.makedirs(args.out, exist_ok=True)
    host, port = args.listen.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind((host, int(port)))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    ports = Ports(args.port_base)
    seen = set()
    log = open(args.log, "a") if args.log else None
    ext = ".bin" if args.proto == "ng" else ".txt"
    print("recorder ready", file=sys.stderr, flush=True)
    while True:
        data, peer = sock.recvfrom(65535)
        sp = data.find(b" ")
        if sp <= 0:
            continue  # no cookie: a real relay drops it too
        cookie, body = data[:sp], data[sp + 1:]
        try:
            if args.proto == "ng":
                name, reply = handle_ng(body, args, ports)
                reply = bencode(reply)
            else:
                name, reply = handle_classic(body, args, ports)
        except Exception as e:  # keep recording whatever comes next
            print("recorder: bad request %r: %s" % (data[:80], e), file=sys.stderr)
            continue
        sock.sendto(cookie + b" " + reply, peer)
        if log:
            log.write("%s %r -> %r\n" % (name, data, reply))
            log.flush()
        if body in seen:
            continue  # the same request again (another child's probe, a retransmission)
        seen.add(body)
        path = os.path.join(args.out, name + ext)
        n = 2
        while os.path.exists(path):  # distinct bytes under a taken name: number it
            path = os.path.join(args.out, "%s-%d%s" % (name, n, ext))
            n += 1
        with open(path, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
