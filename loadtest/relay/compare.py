#!/usr/bin/env python3
"""Relay benchmark: sipfront-rtpproxy vs Debian's rtpengine (userspace) vs a floor.

Each target in turn, pinned to one CPU (--relay-cpu, default 0), gets the same
load from `relaybench gen` pinned to the other CPU (--gen-cpu, default 1):
--sessions calls set up over the ng protocol (offer/answer; the floor has a
fixed port layout instead), then RTP both ways at --rate packets/s per stream.
Reported per target: packets relayed, loss, CPU seconds of the relay process
(utime+stime from /proc/<pid>/stat over the measurement window) per million
packets relayed, and ratios against rtpengine and the floor of the same run
(the machine is shared and noisy: only same-run ratios mean anything).

  compare.py                 # 300 sessions x 50 pps x 2 directions, 10 s, 3 rounds, + step mode
  compare.py --quick         # 100 sessions, 3 s, 1 round, short step: a smoke run (~1 min)
  compare.py --no-step       # only the fixed-rate comparison
  compare.py --no-fixed --step-rates 150,200,300   # only the step mode
  compare.py --targets floor,rtpengine

Step mode (one core): the per-stream rate goes up through --step-rates, a
fresh relay and fresh sessions per step, until loss exceeds 0.1%; the
loss-free packet rate is the highest offered rate (packets/s, both
directions) with loss <= 0.1% among the steps the generator kept on schedule.

Writes the tables to --out (default loadtest/results/relay.md) and prints them.
Exit 0 = all runs completed, 1 = a run failed, 2 = setup error.
Ports: ng control on an ephemeral port, relay media 44000-47999 (ports in use
are skipped), generator parties ephemeral; all on 127.0.0.1.
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RELAY_PORTS = (44000, 47999)
LOSS_LIMIT = 0.001


def log(*a):
    print(*a, file=sys.stderr, flush=True)


def free_port():
    """An ephemeral UDP port that is free now: the ng control port of one
    run (fixed ports collided with other sessions' tests on this machine)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def ng_ping(port, timeout=0.3):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    try:
        s.sendto(b"p1 d7:command4:pinge", ("127.0.0.1", port))
        data, _ = s.recvfrom(4096)
        return b"pong" in data
    except OSError:
        return False
    finally:
        s.close()


class Relay:
    """One relay process, in its own process group, stopped by its pid."""

    def __init__(self, name, argv, ready, workdir):
        self.name = name
        self.argv = argv
        self.ready = ready  # callable(proc, errpath) -> bool
        self.err = os.path.join(workdir, name + ".err")
        self.proc = None

    def start(self):
        self.proc = subprocess.Popen(self.argv, stdout=subprocess.DEVNULL,
                                     stderr=open(self.err, "w"), start_new_session=True)
        deadline = time.time() + 15
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("%s exited with %s: %s" % (self.name, self.proc.returncode, self.tail()))
            if self.ready(self):
                return
            time.sleep(0.1)
        raise RuntimeError("%s not ready in 15 s: %s" % (self.name, self.tail()))

    def tail(self):
        try:
            with open(self.err) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def stop(self):
        if not self.proc or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def stderr_has(text):
    def check(relay):
        return text in relay.tail()
    return check


def make_relay(target, args, workdir, sessions):
    cpu = ["taskset", "-c", str(args.relay_cpu)]
    lo, hi = RELAY_PORTS
    if target == "floor":
        fmap = os.path.join(workdir, "floor.map")
        return Relay("floor", cpu + [args.relaybench, "floor", "--ports", "%d-%d" % (lo, hi),
                                     "--sessions", str(sessions), "--map", fmap,
                                     "--max-seconds", "900"],
                     stderr_has("relaybench floor ready"), workdir), "floor:" + fmap
    ng_port = free_port()
    if target == "rtpengine":
        return Relay("rtpengine", cpu + [
            "rtpengine", "-f", "-E", "--config-file=none", "--table=-1",
            "--interface=127.0.0.1", "--listen-ng=127.0.0.1:%d" % ng_port,
            "--port-min=%d" % lo, "--port-max=%d" % hi, "--num-threads=1",
            "--log-level=4", "--pidfile=" + os.path.join(workdir, "rtpengine.pid")],
            lambda r: ng_ping(ng_port), workdir), "ng:127.0.0.1:%d" % ng_port
    if target == "sipfront":
        return Relay("sipfront", cpu + [
            args.sipfront_bin, "--ng", "udp:127.0.0.1:%d" % ng_port,
            "--media-ip", "127.0.0.1", "--ports", "%d-%d" % (lo, hi), "--workers", "1",
            "--max-sessions", "100000", "--log-level", "warn"],
            # Ready = answers ping: at --log-level warn its ready line is not printed.
            lambda r: ng_ping(ng_port), workdir), "ng:127.0.0.1:%d" % ng_port
    raise ValueError(target)


def best_per_rate(rows):
    """One row per rate: the attempt with the least loss (relaybench repeats a
    step that lost packets or stalled; see its --retries). `attempts` says how
    many it took."""
    out = {}
    for r in rows:
        b = out.get(r["rate"])
        n = (b["attempts"] if b else 0) + 1
        if b is None or r["loss"] < b["loss"]:
            b = dict(r)
        b["attempts"] = n
        out[r["rate"]] = b
    return [out[k] for k in sorted(out)]


def run_gen(args, target, workdir, sessions, rates, warmup, measure, stop_loss, retries):
    relay, spec = make_relay(target, args, workdir, sessions)
    try:
        relay.start()
        bound = 30 + (1 + retries) * len(rates) * (warmup + measure + 1) + sessions * 0.05
        cmd = ["taskset", "-c", str(args.gen_cpu), args.relaybench, "gen", "--relay", spec,
               "--sessions", str(sessions), "--rates", ",".join(map(str, rates)),
               "--warmup", str(warmup), "--measure", str(measure),
               "--pid", str(relay.proc.pid),
               "--stop-loss", str(stop_loss), "--retries", str(retries), "--label", target]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=bound)
        if out.returncode != 0:
            raise RuntimeError("generator against %s failed: %s\nrelay: %s" %
                               (target, out.stderr.strip(), relay.tail()))
        if relay.proc.poll() is not None:
            raise RuntimeError("%s died during the run: %s" % (target, relay.tail()))
        rows = [json.loads(l) for l in out.stdout.splitlines() if l.startswith("{")]
        return best_per_rate(rows)
    finally:
        relay.stop()


def step_mode(args, target, workdir, sessions, rates, measure):
    """Raises the per-stream rate until loss > LOSS_LIMIT. Each attempt gets a
    fresh relay: rtpengine 10.5, once a burst has overflowed its sockets,
    discards ("UDP receive queue exceeded 5 times: discarding packet") and
    relays nothing more, so a retry on the same process would measure that,
    not the rate. A step that lost packets, or during which the generator
    stalled (> 50 ms late: this machine is shared), is tried up to 3 times;
    the best attempt counts."""
    out = []
    for rate in rates:
        best = None
        for attempt in range(3):
            log("step: %s, %d sessions x %d pps x 2, attempt %d ..." % (target, sessions, rate, attempt + 1))
            try:
                row = run_gen(args, target, workdir, sessions, [rate], 1.0, measure, 1.0, 0)[0]
            except (RuntimeError, subprocess.TimeoutExpired, IndexError) as e:
                log("  FAILED: %s" % e)
                if attempt == 2 and best is None:
                    return None
                continue
            log("  " + json.dumps(row))
            if best is None or row["loss"] < best["loss"]:
                best = row
            best["attempts"] = attempt + 1
            if row["loss"] <= LOSS_LIMIT and row["gen_max_late_ms"] <= 50:
                break
        out.append(best)
        if best["loss"] > LOSS_LIMIT:
            break
    return out


def med(rows, key):
    return statistics.median(r[key] for r in rows)


def fmt_ratio(a, b):
    return "%.2f" % (a / b) if b else "-"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="smoke run: 100 sessions, 3 s, 1 round, short step")
    ap.add_argument("--targets", default="floor,rtpengine,sipfront")
    ap.add_argument("--sessions", type=int, default=None)
    ap.add_argument("--rate", type=int, default=50, help="packets/s per stream (fixed-rate comparison)")
    ap.add_argument("--warmup", type=float, default=None)
    ap.add_argument("--measure", type=float, default=None)
    ap.add_argument("--repeat", type=int, default=None)
    ap.add_argument("--no-step", action="store_true")
    ap.add_argument("--no-fixed", action="store_true", help="only the step mode")
    ap.add_argument("--step-rates", default=None, help="per-stream rates of the step mode")
    # Relays on CPU 0: sipfront-rtpproxy pins its worker k to CPU k itself,
    # whatever taskset said, so CPU 0 is the only one all three can share.
    ap.add_argument("--relay-cpu", type=int, default=0)
    ap.add_argument("--gen-cpu", type=int, default=1)
    ap.add_argument("--sipfront-bin", default=None,
                    help="default: build it (cargo build -p sipfront-rtpproxy --release)")
    ap.add_argument("--out", default=os.path.join(REPO, "loadtest", "results", "relay.md"))
    ap.add_argument("--json", default=None, help="also write every raw row here")
    args = ap.parse_args()
    q = args.quick
    sessions = args.sessions or (100 if q else 300)
    warmup = args.warmup if args.warmup is not None else (1.0 if q else 2.0)
    measure = args.measure if args.measure is not None else (3.0 if q else 10.0)
    repeat = args.repeat or (1 if q else 3)
    step_rates = [int(x) for x in (args.step_rates or ("50,200,400" if q else
                                                        "50,100,125,150,200,250,300,400")).split(",")]
    step_measure = 2.0 if q else 4.0
    targets = [t for t in args.targets.split(",") if t]
    if 4 * sessions > RELAY_PORTS[1] - RELAY_PORTS[0] + 1:
        log("too many sessions for the relay port range")
        return 2

    for tool in ["taskset", "cargo"] + (["rtpengine"] if "rtpengine" in targets else []):
        if not shutil.which(tool):
            log("missing: %s (rtpengine: apt-get install -y rtpengine-daemon)" % tool)
            return 2
    log("building relaybench ...")
    b = subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path",
                        os.path.join(HERE, "Cargo.toml")])
    if b.returncode != 0:
        return 2
    workdir = tempfile.mkdtemp(prefix="relaybench.")
    # Copies: a cargo build during the run cannot change what later runs measure.
    args.relaybench = shutil.copy(os.path.join(HERE, "target", "release", "relaybench"), workdir)
    if "sipfront" in targets:
        if not args.sipfront_bin:
            log("building sipfront-rtpproxy ...")
            b = subprocess.run(["cargo", "build", "-q", "-p", "sipfront-rtpproxy", "--release"], cwd=REPO)
            if b.returncode != 0:
                return 2
            tdir = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
            args.sipfront_bin = os.path.join(tdir, "release", "sipfront-rtpproxy")
        args.sipfront_bin = shutil.copy(args.sipfront_bin, workdir)

    fixed = {t: [] for t in targets}
    steps = {}
    failed = False
    try:
        for rnd in range(0 if args.no_fixed else repeat):
            # Interleaved, so a noisy neighbour hits every target alike.
            order = targets[rnd % len(targets):] + targets[:rnd % len(targets)]
            for t in order:
                log("round %d/%d: %s, %d sessions x %d pps x 2 ..." % (rnd + 1, repeat, t, sessions, args.rate))
                try:
                    rows = run_gen(args, t, workdir, sessions, [args.rate], warmup, measure, LOSS_LIMIT, 1)
                    fixed[t].extend(rows)
                    log("  " + json.dumps(rows[0]))
                except (RuntimeError, subprocess.TimeoutExpired) as e:
                    log("  FAILED: %s" % e)
                    failed = True
        if not args.no_step:
            for t in targets:
                steps[t] = step_mode(args, t, workdir, sessions, step_rates, step_measure)
                failed |= steps[t] is None
                steps[t] = steps[t] or []
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    cmd = "loadtest/relay/compare.sh " + " ".join(sys.argv[1:])
    md = report(fixed, steps, sessions, args.rate, measure, repeat, cmd.strip())
    print(md)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(md)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"fixed": fixed, "steps": steps}, f, indent=1)
    return 1 if failed else 0


def report(fixed, steps, sessions, rate, measure, repeat, cmd):
    L = []
    L.append("# Relay benchmark: sipfront-rtpproxy vs rtpengine (userspace) vs floor\n")
    L.append("Command: `%s` (%s UTC, %s)\n" % (cmd, time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
                                                 os.uname().nodename))
    L.append("Each relay pinned to one CPU (`taskset -c 0`; rtpengine `--num-threads=1 --table=-1`, "
             "sipfront-rtpproxy `--workers 1`), the generator on the other. %d sessions set up over ng "
             "(offer/answer), %d packets/s per stream, both directions (%d packets/s offered), "
             "%.0f s windows, median of %d round(s). CPU = utime+stime of the relay process over the "
             "window.\n" % (sessions, rate, 2 * sessions * rate, measure, repeat))
    L.append("| relay | relayed (median) | loss | CPU s / M packets | vs rtpengine | vs floor |")
    L.append("|---|---:|---:|---:|---:|---:|")
    per = {t: med(rows, "cpu_s_per_mpkt") for t, rows in fixed.items() if rows}
    for t, rows in fixed.items():
        if not rows:
            L.append("| %s | failed | | | | |" % t)
            continue
        L.append("| %s | %d | %.4f%% | %.2f | %s | %s |" % (
            t, med(rows, "relayed"), 100 * max(r["loss"] for r in rows), per[t],
            fmt_ratio(per[t], per.get("rtpengine", 0)), fmt_ratio(per[t], per.get("floor", 0))))
    L.append("\nLoss is the worst round's. Every round's CPU s / M packets: " + "; ".join(
        "%s %s" % (t, ", ".join("%.2f" % r["cpu_s_per_mpkt"] for r in rows)) for t, rows in fixed.items()) + ".\n")
    if steps:
        L.append("## Loss-free packet rate on one core (step mode)\n")
        L.append("Per-stream rate raised on %d sessions until loss > %.1f%%; "
                 "the loss-free rate is the highest offered rate (both directions) with loss <= %.1f%%. "
                 "`gen late` is the generator's worst lateness: above ~20 ms the generator, not the "
                 "relay, set the pace.\n" % (sessions, 100 * LOSS_LIMIT, 100 * LOSS_LIMIT))
        L.append("Each attempt starts a fresh relay. A step that lost packets, or during which the "
                 "generator fell more than 50 ms behind (a stall of this shared machine), is run up to "
                 "twice more; the best attempt counts (`xN` = attempts).\n")
        L.append("A step is **valid** only if the generator kept its schedule (at most 50 ms late); "
                 "above that it sent slower than offered (`achieved` = packets sent / s), so the "
                 "step says nothing about the relay. The loss-free rate is the highest valid step "
                 "with loss <= 0.1%; `>=` when no valid step lost packets.\n")
        L.append("`CPU-bound estimate` = offered rate / relay CPU busy fraction at the highest valid "
                 "loss-free step: the rate at which the relay's one core would be full, if it stays "
                 "loss-free that far (rtpengine may not: see its overload protection in "
                 "loadtest/relay/README.md).\n")
        L.append("| relay | loss-free packets/s | CPU-bound estimate | steps (offered pps: loss %, CPU s/Mpkt, "
                 "relay CPU busy %, gen late ms, achieved pps) |")
        L.append("|---|---:|---:|---|")
        for t, rows in steps.items():
            valid = [r for r in rows if r["gen_max_late_ms"] <= 50]
            ok = [r["offered_pps"] for r in valid if r["loss"] <= LOSS_LIMIT]
            best = max(ok) if ok else 0
            lost = [r for r in valid if r["loss"] > LOSS_LIMIT]
            capped = not lost
            detail = "; ".join("%d: %.3f%%, %.2f, %.0f%%, %.0f, %d%s%s" % (
                r["offered_pps"], 100 * r["loss"], r["cpu_s_per_mpkt"],
                100 * r["cpu_s"] / r["window_s"], r["gen_max_late_ms"],
                r["sent"] / max(r["window_s"] - 0.3, 0.1),
                "" if r["gen_max_late_ms"] <= 50 else " (invalid)",
                " x%d" % r["attempts"] if r["attempts"] > 1 else "") for r in rows)
            top = [r for r in valid if r["loss"] <= LOSS_LIMIT and r["offered_pps"] == best]
            est = "%d" % (best / (top[0]["cpu_s"] / top[0]["window_s"])) if top and top[0]["cpu_s"] else "-"
            L.append("| %s | %s%d | %s | %s |" % (t, ">= " if capped else "", best, est, detail))
        L.append("\n`>=`: no valid step lost packets; the real limit is higher than the generator "
                 "could show on this machine.\n")
    return "\n".join(L) + "\n"


if __name__ == "__main__":
    sys.exit(main())
