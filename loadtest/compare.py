#!/usr/bin/env python3
"""Side-by-side CPU-per-call comparison: sipfront vs Kamailio vs the floor.

For each target (sipfront, Kamailio 5.6 dispatcher, the
examples/floor_forwarder floor) and each worker count, one after the other
(`--mode stateless`: sipfront --mode stateless vs Kamailio forward();
`--mode stateful`: sipfront's transactions vs Kamailio tm t_relay() with a
failure_route doing ds_next_dst):

  1. start two SIPp UAS backends (127.0.0.1:5070 and :5080),
  2. start the target on 127.0.0.1:5060 with N workers (Kamailio: children=N),
  3. measure its idle CPU for a few seconds (no traffic: proves no busy spin),
  4. run several SIPp uac instances in parallel against it (each on its own
     local port, so the kernel sees several 4-tuples), bounded by -m and by
     `timeout`,
  5. read the target's CPU time (utime+stime from /proc/PID/stat, summed over
     the whole process tree) right before killing it, and divide the CPU
     spent during the load by the calls completed.

Prints a table and writes it to loadtest/results/latest.md (stateful:
stateful.md) (+ .json). In stateful mode it also measures the memory each
live transaction takes in sipfront and in Kamailio: backends that hold every
call for 8 s fill the proxy with live INVITE transactions, and the growth of
the process tree's PSS is divided by their number.
Exit status: 0 all runs passed, 1 some run failed, 2 setup/usage error.
Standard library only. See loadtest/README.md.
"""

import argparse
import csv
import datetime
import json
import os
import platform
import shlex
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
CLK_TCK = os.sysconf("SC_CLK_TCK")
HOST = "127.0.0.1"
IDLE_BUSY_LIMIT = 0.05  # idle CPU above 5 % of one core = something spins
# SIPp aborts a call on any out-of-order message (a 180 overtaken by its 200);
# a multi-process Kamailio on one socket reorders under load, real UAs shrug.
# By default SIPp keeps going and we count those messages (column "reord.");
# --strict restores SIPp's abort-on-unexpected.
TOLERANT = ["-default_behaviors", "all,-abortunexp"]
UNEXP_MARK = "Continuing call on unexpected message"

# --------------------------------------------------------------------------
# process bookkeeping: every process we start is a session leader; cleanup
# signals those process groups (by id) and nothing else.

_started = []  # list of subprocess.Popen


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def spawn(cmd, cwd, out_path, bound_s):
    """Start cmd under `timeout` (a safety net if we die), in its own session."""
    full = ["timeout", "-k", "5", "%ds" % max(1, int(bound_s))] + cmd
    out = open(out_path, "wb")
    p = subprocess.Popen(full, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                         stdin=subprocess.DEVNULL, start_new_session=True)
    out.close()
    p.cmdline = cmd
    p.log_path = out_path
    _started.append(p)
    return p


def stop(p, grace=3.0):
    if p not in _started:
        return  # already stopped: never signal a group id twice
    if p.poll() is None:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        try:
            p.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    # the group may outlive its leader (Kamailio children): always make sure
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    try:
        p.wait(2)
    except subprocess.TimeoutExpired:
        pass
    _started.remove(p)


def cleanup():
    for p in list(_started):
        stop(p, grace=2.0)


def _on_signal(signum, _frame):
    log("compare: got signal %d, cleaning up" % signum)
    cleanup()
    sys.exit(128 + signum)


# --------------------------------------------------------------------------
# /proc helpers

def udp_bound(port, ip=HOST):
    """True if some UDP socket is bound to ip:port (or the wildcard)."""
    want = {"%08X:%04X" % (int.from_bytes(bytes(map(int, ip.split("."))), "little"), port),
            "00000000:%04X" % port}
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                if line.split()[1] in want:
                    return True
    except OSError:
        pass
    return False


def wait_bound(port, proc, timeout_s):
    end = time.time() + timeout_s
    while time.time() < end:
        if proc.poll() is not None:
            return False
        if udp_bound(port):
            return True
        time.sleep(0.05)
    return False


def _stat_fields(path):
    with open(path) as f:
        s = f.read()
    return s[s.rindex(")") + 2:].split()


def proc_tree(root):
    """root and all its descendants (by ppid), from /proc."""
    children = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            ppid = int(_stat_fields("/proc/%s/stat" % d)[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(ppid, []).append(int(d))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def cpu_snapshot(root):
    """{'ticks': utime+stime summed over the tree's processes,
        'tasks': {(pid, tid, name): ticks} per thread/process,
        'ns': on-CPU ns from schedstat over live threads (cross-check)}"""
    ticks, uticks, tasks, ns = 0, 0, {}, 0
    for pid in proc_tree(root):
        try:
            f = _stat_fields("/proc/%d/stat" % pid)
            ticks += int(f[11]) + int(f[12])
            uticks += int(f[11])
            for tid in os.listdir("/proc/%d/task" % pid):
                base = "/proc/%d/task/%s" % (pid, tid)
                tf = _stat_fields(base + "/stat")
                with open(base + "/comm") as c:
                    name = c.read().strip()
                tasks[(pid, int(tid), name)] = int(tf[11]) + int(tf[12])
                try:
                    with open(base + "/schedstat") as s:
                        ns += int(s.read().split()[0])
                except (OSError, ValueError):
                    pass
        except (OSError, ValueError, IndexError):
            continue  # exited meanwhile
    return {"ticks": ticks, "uticks": uticks, "tasks": tasks, "ns": ns}


def cpu_delta(a, b):
    tasks = {}
    for k, v in b["tasks"].items():
        tasks[k] = v - a["tasks"].get(k, 0)
    return {"s": (b["ticks"] - a["ticks"]) / CLK_TCK,
            "user_s": (b["uticks"] - a["uticks"]) / CLK_TCK,
            "ns_s": (b["ns"] - a["ns"]) / 1e9,
            "tasks": tasks}


def split_str(tasks, top=2):
    tot = sum(v for v in tasks.values() if v > 0)
    if tot <= 0:
        return "-"
    vals = sorted((v for v in tasks.values() if v > 0), reverse=True)[:top]
    return "/".join("%d" % round(100.0 * v / tot) for v in vals) + "%"


# --------------------------------------------------------------------------
# SIPp

def read_stat(path):
    """Final row of a SIPp -trace_stat CSV as a dict (or None)."""
    try:
        with open(path, newline="") as f:
            rows = [r for r in csv.reader(f, delimiter=";") if r]
    except OSError:
        return None
    if len(rows) < 2:
        return None
    return dict(zip(rows[0], rows[-1]))


def stat_int(d, key):
    try:
        return int(d.get(key, "0") or 0)
    except ValueError:
        return 0


def hms_to_s(v):
    # SIPp prints ElapsedTime(C) as HH:MM:SS[:mmmuuu]
    try:
        parts = v.split(":")
        s = int(parts[0]) * 3600 + int(parts[1]) * 60 + int(parts[2])
        if len(parts) > 3:
            s += int(parts[3]) / 1e6
        return float(s)
    except (ValueError, IndexError, AttributeError):
        return 0.0


def count_in(path, needle):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").count(needle)
    except OSError:
        return 0


def tail(path, n=15):
    try:
        with open(path, "rb") as f:
            data = f.read()[-8000:].decode("utf-8", "replace")
        return "\n".join(data.splitlines()[-n:])
    except OSError:
        return "(no log)"


# --------------------------------------------------------------------------
# targets

def kamailio_dslist(tmp, backends):
    default = os.path.join(HERE, "kamailio", "dispatcher.list")
    if backends == [5070, 5080]:
        return default
    path = os.path.join(tmp, "dispatcher.list")
    with open(path, "w") as f:
        for b in backends:
            f.write("1 sip:%s:%d 0 0\n" % (HOST, b))
    return path


def target_cmd(name, workers, args, tmp):
    be = args.backend_ports
    if name == "sipfront":
        cmd = [args.sipfront_bin, "--listen", "udp:%s:%d" % (HOST, args.port)]
        for b in be:
            cmd += ["--backend", "sip:%s:%d" % (HOST, b)]
        cmd += ["--workers", str(workers), "--algorithm", "call-id", "--mode", args.mode]
        return cmd + shlex.split(args.sipfront_args)
    if name == "kamailio":
        cfg = "%s-dispatcher.cfg" % args.mode
        return [args.kamailio_bin, "-f", os.path.join(HERE, "kamailio", cfg),
                "-DD", "-E", "-m", str(args.kamailio_shm), "-M", "8",
                "-A", "SF_LISTEN=udp:%s:%d" % (HOST, args.port),
                "-A", "SF_CHILDREN=%d" % workers,
                "-A", 'SF_DSLIST="%s"' % kamailio_dslist(tmp, be)]
    if name == "floor":
        cmd = [args.floor_bin, "--listen", "%s:%d" % (HOST, args.port)]
        for b in be:
            cmd += ["--backend", "%s:%d" % (HOST, b)]
        return cmd + ["--workers", str(workers)]
    raise ValueError(name)


def uac_cmd(port, args, stat_path, err_path):
    return ["sipp", "-sn", "uac", "%s:%d" % (HOST, args.port),
            "-i", HOST, "-p", str(port),
            "-r", str(args.rate), "-m", str(args.calls), "-d", "0",
            "-l", str(args.limit), "-nostdin",
            "-timeout", "%ds" % args.uac_timeout, "-timeout_error",
            "-trace_stat", "-fd", "1", "-stf", stat_path,
            "-trace_err", "-error_file", err_path] + TOLERANT


def uas_cmd(port, err_path=None, scenario=None):
    sc = ["-sf", scenario] if scenario else ["-sn", "uas"]
    cmd = ["sipp"] + sc + ["-i", HOST, "-p", str(port), "-nostdin"]
    if err_path:
        cmd += ["-trace_err", "-error_file", err_path]
    return cmd + TOLERANT


def pick_uac_ports(args, workers):
    """Local ports for the uacs such that the kernel's SO_REUSEPORT hash puts
    them evenly on `workers` sockets bound to the target's address.

    The default reuseport choice is hash(4-tuple, boot secret) scaled over the
    group's sockets in bind order, so a probe group of `workers` sockets bound
    now (the target is not running yet) sorts candidate source ports exactly
    as the target's own group will, if it binds one socket per worker and no
    BPF selector. With one socket (Kamailio) it changes nothing."""
    base, n = args.uac_port_base, args.uacs
    plain = [base + i for i in range(n)]
    if workers < 2 or args.no_spread or udp_bound(args.port):
        return plain
    group, picked, counts = [], [], [0] * workers
    try:
        for _ in range(workers):
            g = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            g.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            g.bind((HOST, args.port))
            g.setblocking(False)
            group.append(g)
        want = [n // workers + (1 if i < n % workers else 0) for i in range(workers)]
        for port in range(base, base + 400):
            if len(picked) == n:
                break
            if udp_bound(port):
                continue
            c = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            try:
                c.bind((HOST, port))
                c.sendto(b"probe", (HOST, args.port))
                time.sleep(0.002)
                for i, g in enumerate(group):
                    try:
                        g.recvfrom(64)
                    except BlockingIOError:
                        continue
                    if counts[i] < want[i]:
                        counts[i] += 1
                        picked.append(port)
                    break
            except OSError:
                pass
            finally:
                c.close()
    except OSError as e:
        log("compare: reuseport probe failed (%s); uac ports %s" % (e, plain))
        return plain
    finally:
        for g in group:
            g.close()
    return sorted(picked) if len(picked) == n else plain


def pss_kb(root):
    """Proportional set size of root's process tree, kB (shared memory such
    as Kamailio's shm counted once across its processes)."""
    total = 0
    for pid in proc_tree(root):
        try:
            with open("/proc/%d/smaps_rollup" % pid) as f:
                for line in f:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
        except OSError:
            pass
    return total


MEM_HOLD_S = 8.0  # loadtest/scenarios/uas_hold.xml's pause


def measure_memory(name, workers, args, tmp):
    """Memory per live INVITE transaction: backends hold each call for 8 s,
    one uac sends at args.mem_rate for 6 s, and the growth of the target's
    PSS is divided by the INVITEs sent (all still in flight)."""
    d = os.path.join(tmp, "%s-mem" % name)
    os.makedirs(d)
    res = {"target": name, "workers": workers, "live": 0, "pss_base_kb": None,
           "pss_peak_kb": None, "bytes_per_txn": None, "why": []}
    hold = os.path.join(HERE, "scenarios", "uas_hold.xml")
    busy = [p for p in [args.port] + args.backend_ports + [args.uac_port_base] if udp_bound(p)]
    if busy:
        res["why"].append("ports busy: %s" % busy)
        return res
    bound = 60
    try:
        for bp in args.backend_ports:
            p = spawn(uas_cmd(bp, scenario=hold), d, os.path.join(d, "uas-%d.log" % bp), bound)
            if not wait_bound(bp, p, 10):
                res["why"].append("UAS on %d did not start" % bp)
                return res
        t = spawn(target_cmd(name, workers, args, d), d, os.path.join(d, "target.log"), bound)
        if not wait_bound(args.port, t, 15):
            res["why"].append("%s did not start: %s" % (name, tail(t.log_path, 5)))
            return res
        time.sleep(1.0)
        res["pss_base_kb"] = pss_kb(t.pid)
        sp = os.path.join(d, "uac_stat.csv")
        ep = os.path.join(d, "uac_errors.log")
        old = args.rate, args.calls
        args.rate, args.calls = args.mem_rate, int(args.mem_rate * (MEM_HOLD_S - 1))
        cmd = uac_cmd(args.uac_port_base, args, sp, ep)
        args.rate, args.calls = old
        spawn(cmd, d, os.path.join(d, "uac.log"), bound)
        t0 = time.time()
        time.sleep(MEM_HOLD_S - 1.5)
        res["pss_peak_kb"] = pss_kb(t.pid)
        elapsed = time.time() - t0
        # INVITEs sent so far: none answered yet (the backends hold them).
        res["live"] = int(args.mem_rate * elapsed)
        if res["live"] > 0:
            res["bytes_per_txn"] = (res["pss_peak_kb"] - res["pss_base_kb"]) * 1024.0 / res["live"]
    finally:
        cleanup()
    return res


def run_one(name, workers, rep, args, tmp, uac_ports):
    tag = "%s-w%d-r%d" % (name, workers, rep)
    d = os.path.join(tmp, tag)
    os.makedirs(d)
    res = {"target": name, "workers": workers, "rep": rep, "ok": 0, "failed": 0,
           "retrans": 0, "reord": 0, "cpu_s": None, "user_pct": None, "uac_ports": [], "cpu_ns_s": None, "cpu_per_1k": None,
           "idle_pct": None, "split": "-", "cps": 0.0, "pass": False, "why": [],
           "uac_rc": [], "cmd": None}
    bound = args.idle + args.uac_timeout + 60
    ports = [args.port] + args.backend_ports + list(uac_ports)
    res["uac_ports"] = list(uac_ports)
    busy = [p for p in ports if udp_bound(p)]
    if busy:
        res["why"].append("UDP port(s) %s already in use on %s; not touching them" % (busy, HOST))
        return res
    procs = []
    try:
        for bp in args.backend_ports:
            p = spawn(uas_cmd(bp, os.path.join(d, "uas-%d_errors.log" % bp)), d,
                      os.path.join(d, "uas-%d.log" % bp), bound)
            procs.append(p)
            if not wait_bound(bp, p, 10):
                res["why"].append("UAS on %d did not start: %s" % (bp, tail(p.log_path, 5)))
                return res
        cmd = target_cmd(name, workers, args, d)
        res["cmd"] = " ".join(shlex.quote(args.shown_bin.get(c, c)) for c in cmd)
        t = spawn(cmd, d, os.path.join(d, "target.log"), bound)
        procs.append(t)
        if not wait_bound(args.port, t, 15):
            rc = t.poll()
            res["why"].append("%s did not bind udp:%s:%d (%s); log:\n%s" % (
                name, HOST, args.port, "exited rc=%s" % rc if rc is not None else "timeout",
                tail(t.log_path, 10)))
            res["not_ready"] = True
            return res
        time.sleep(0.5)  # let every worker/child finish starting

        # idle CPU: no traffic at all
        a = cpu_snapshot(t.pid)
        time.sleep(args.idle)
        b = cpu_snapshot(t.pid)
        idle = cpu_delta(a, b)
        res["idle_pct"] = 100.0 * idle["s"] / args.idle

        # load
        uacs = []
        before = cpu_snapshot(t.pid)
        t0 = time.time()
        for i in range(args.uacs):
            sp = os.path.join(d, "uac%d_stat.csv" % i)
            ep = os.path.join(d, "uac%d_errors.log" % i)
            u = spawn(uac_cmd(uac_ports[i], args, sp, ep), d, os.path.join(d, "uac%d.log" % i),
                      args.uac_timeout + 15)
            u.stat_path, u.err_path = sp, ep
            uacs.append(u)
            procs.append(u)
        deadline = t0 + args.uac_timeout + 20
        for u in uacs:
            try:
                u.wait(max(1, deadline - time.time()))
            except subprocess.TimeoutExpired:
                stop(u)
        wall = time.time() - t0
        alive = t.poll() is None
        after = cpu_snapshot(t.pid)  # right before killing the target
        load = cpu_delta(before, after)
        stop(t)

        res["uac_rc"] = [u.returncode for u in uacs]
        max_el = 0.0
        for i, u in enumerate(uacs):
            st = read_stat(u.stat_path)
            if st is None:
                res["why"].append("uac%d wrote no stats (rc=%s): %s" % (i, u.returncode, tail(u.log_path, 5)))
                continue
            res["ok"] += stat_int(st, "SuccessfulCall(C)")
            res["failed"] += stat_int(st, "FailedCall(C)")
            res["retrans"] += stat_int(st, "Retransmissions(C)")
            max_el = max(max_el, hms_to_s(st.get("ElapsedTime(C)", "")))
            if u.returncode != 0:
                res["why"].append("uac%d exit code %s" % (i, u.returncode))
                if os.path.exists(u.err_path):
                    res["why"].append("uac%d errors: %s" % (i, tail(u.err_path, 6)))
        for path in [u.err_path for u in uacs] + [
                os.path.join(d, "uas-%d_errors.log" % bp) for bp in args.backend_ports]:
            res["reord"] += count_in(path, UNEXP_MARK)
        res["cps"] = res["ok"] / max_el if max_el > 0 else 0.0
        res["wall_s"] = wall
        if not alive:
            load = {"s": 0.0, "user_s": 0.0, "ns_s": 0.0, "tasks": {}}  # tree gone: no valid reading
        res["cpu_s"] = load["s"] if alive else None
        res["cpu_ns_s"] = load["ns_s"]
        res["user_pct"] = 100.0 * load["user_s"] / load["s"] if load["s"] > 0 else None
        res["split"] = split_str(load["tasks"])
        res["tasks"] = {"%s(%d/%d)" % (k[2], k[0], k[1]): v / CLK_TCK
                        for k, v in sorted(load["tasks"].items()) if v > 0}
        if res["ok"] > 0 and alive:
            res["cpu_per_1k"] = load["s"] / res["ok"] * 1000.0
        expected = args.calls * args.uacs
        if not alive:
            res["why"].append("%s died during the run: %s" % (name, tail(t.log_path, 8)))
        if res["failed"]:
            res["why"].append("%d failed calls" % res["failed"])
        if res["ok"] != expected:
            early = max_el < args.calls / max(1, args.rate) - 1
            res["why"].append("%d of %d calls completed%s" % (
                res["ok"], expected, " (a uac stopped early: signalled from outside?)" if early else ""))
        if res["retrans"] and not args.quick:
            res["why"].append("%d retransmissions (loss or a >500 ms stall; lower --rate)" % res["retrans"])
        if res["idle_pct"] is not None and res["idle_pct"] > 100 * IDLE_BUSY_LIMIT:
            res["why"].append("idle CPU %.1f%% of a core: busy spinning?" % res["idle_pct"])
        res["pass"] = not res["why"]
        if not res["pass"]:
            res["why"].append("target log: " + tail(t.log_path, 6))
        return res
    finally:
        for p in reversed(procs):
            stop(p)


# --------------------------------------------------------------------------
# building

def ensure_floor(args):
    if args.floor_bin:
        return args.floor_bin
    path = os.path.join(REPO, "target", "release", "examples", "floor_forwarder")
    log("compare: cargo build --release --example floor_forwarder")
    r = subprocess.run(["cargo", "build", "--release", "--example", "floor_forwarder"],
                       cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    if r.returncode != 0:
        if os.path.exists(path):
            log("compare: WARNING: build failed, using existing %s\n%s" % (path, r.stderr.decode()[-1500:]))
        else:
            log("compare: building the floor failed:\n" + r.stderr.decode()[-3000:])
            sys.exit(2)
    return path


def ensure_sipfront(args):
    path = args.sipfront_bin
    if os.path.exists(path):
        return path
    default = os.path.join(REPO, "target", "release", "sipfront")
    if os.path.abspath(path) != default:
        log("compare: --sipfront-bin %s does not exist" % path)
        sys.exit(2)
    log("compare: %s missing: cargo build --release --bin sipfront" % path)
    r = subprocess.run(["cargo", "build", "--release", "--bin", "sipfront"], cwd=REPO,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=1800)
    if r.returncode != 0 or not os.path.exists(path):
        log("compare: building sipfront failed:\n" + r.stderr.decode()[-3000:])
        sys.exit(2)
    return path


# --------------------------------------------------------------------------
# report

def fmt(v, spec="%.3f"):
    return "-" if v is None else spec % v


def aggregate(runs):
    """One row per (target, workers): sums of calls, median CPU of the reps."""
    r0 = runs[0]
    cpus = [r["cpu_per_1k"] for r in runs if r["cpu_per_1k"] is not None]
    idles = [r["idle_pct"] for r in runs if r["idle_pct"] is not None]
    return {
        "target": r0["target"], "workers": r0["workers"], "reps": len(runs),
        "ok": sum(r["ok"] for r in runs), "failed": sum(r["failed"] for r in runs),
        "retrans": sum(r["retrans"] for r in runs),
        "reord": sum(r["reord"] for r in runs),
        "cpu_per_1k": statistics.median(cpus) if cpus else None,
        "cpu_min": min(cpus) if cpus else None, "cpu_max": max(cpus) if cpus else None,
        "idle_pct": max(idles) if idles else None,
        "user_pct": statistics.median([r["user_pct"] for r in runs if r["user_pct"] is not None] or [0]),
        "cps": statistics.median([r["cps"] for r in runs]),
        "split": runs[len(runs) // 2]["split"],
        "pass": all(r["pass"] for r in runs),
        "not_ready": any(r.get("not_ready") for r in runs),
    }


def table(rows, repeat):
    by = {(r["target"], r["workers"]): r for r in rows}
    head = ["target", "workers", "calls ok", "failed", "retrans", "reord.", "cps",
            "CPU s/1000 calls", "vs Kamailio", "vs floor", "idle CPU", "split", "result"]
    out = []
    for r in rows:
        cpu = r["cpu_per_1k"]
        k = by.get(("kamailio", r["workers"]), {}).get("cpu_per_1k")
        f = by.get(("floor", r["workers"]), {}).get("cpu_per_1k")
        cpu_s = fmt(cpu, "%.4f")
        if repeat > 1 and cpu is not None:
            cpu_s += " (%.4f-%.4f)" % (r["cpu_min"], r["cpu_max"])
        res = "PASS" if r["pass"] else ("NOT READY" if r["not_ready"] else "FAIL")
        out.append([r["target"], str(r["workers"]), str(r["ok"]), str(r["failed"]), str(r["retrans"]),
                    str(r["reord"]),
                    "%.0f" % r["cps"], cpu_s,
                    ("%.2fx" % (cpu / k)) if cpu and k else "-",
                    ("%.2fx" % (cpu / f)) if cpu and f else "-",
                    fmt(r["idle_pct"], "%.1f%%"), r["split"], res])
    return head, out


def render_text(head, rows):
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(head)]
    line = lambda cells: "  ".join(c.ljust(w[i]) for i, c in enumerate(cells))
    return "\n".join([line(head), line(["-" * x for x in w])] + [line(r) for r in rows])


def render_md(head, rows):
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def git_rev():
    try:
        r = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO,
                           capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return r.stdout.strip() + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "?"


# --------------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["stateless", "stateful"], default="stateless",
                    help="sipfront's proxy mode and the matching Kamailio config (default stateless)")
    ap.add_argument("--mem-rate", type=int, default=200,
                    help="stateful mode: calls/s while measuring memory per live transaction")
    ap.add_argument("--targets", default="sipfront,kamailio,floor",
                    help="comma list of sipfront,kamailio,floor (default all)")
    ap.add_argument("--workers", default="1,2", help="comma list of worker counts (default 1,2)")
    ap.add_argument("--rate", type=int, default=None, help="calls/s per uac (default 400; quick 200)")
    ap.add_argument("--calls", type=int, default=None, help="calls per uac (default 4000 = 10 s; quick 400)")
    ap.add_argument("--uacs", type=int, default=None, help="parallel SIPp uac instances (default 2; quick 1)")
    ap.add_argument("--repeat", type=int, default=1, help="runs per target/workers; table shows the median")
    ap.add_argument("--idle", type=float, default=None, help="idle seconds measured before the load (default 3)")
    ap.add_argument("--quick", action="store_true",
                    help="CI smoke: 1 uac x 200 cps x 2 s, checks zero failed calls only")
    ap.add_argument("--sipfront-bin", default=os.path.join(REPO, "target", "release", "sipfront"))
    ap.add_argument("--sipfront-args", default="", help="extra arguments appended to sipfront's command")
    ap.add_argument("--floor-bin", default=None, help="prebuilt floor_forwarder (default: cargo build the example)")
    ap.add_argument("--kamailio-bin", default=shutil.which("kamailio") or "/usr/sbin/kamailio")
    ap.add_argument("--kamailio-shm", type=int, default=128, help="Kamailio -m (MB)")
    ap.add_argument("--port", type=int, default=5060, help="target listen port on 127.0.0.1")
    ap.add_argument("--backend-ports", default="5070,5080", help="SIPp UAS ports")
    ap.add_argument("--uac-port-base", type=int, default=16000,
                    help="uac local ports are picked from here up (127.0.0.1)")
    ap.add_argument("--no-spread", action="store_true",
                    help="uac i uses port base+i instead of ports probed to spread over SO_REUSEPORT workers")
    ap.add_argument("--out", default=None,
                    help="markdown table (default results/latest.md; --quick: results/quick.md)")
    ap.add_argument("--keep", action="store_true", help="keep the temp dir with all logs")
    ap.add_argument("--strict", action="store_true",
                    help="SIPp aborts calls on out-of-order messages (default: tolerate and count them)")
    args = ap.parse_args()

    q = args.quick
    if args.out is None:
        name = {"stateless": "latest.md", "stateful": "stateful.md"}[args.mode]
        args.out = os.path.join(HERE, "results", ("quick-" + name) if q else name)
    if args.strict:
        TOLERANT.clear()
    args.rate = args.rate or (200 if q else 400)
    args.calls = args.calls or (400 if q else 4000)
    args.uacs = args.uacs or (1 if q else 2)
    args.idle = args.idle if args.idle is not None else (1.0 if q else 3.0)
    args.limit = max(1000, args.rate * 10)
    args.uac_timeout = int(args.calls / max(1, args.rate)) + 30
    args.backend_ports = [int(x) for x in args.backend_ports.split(",") if x]
    targets = [t.strip() for t in args.targets.split(",") if t.strip()]
    workers = [int(w) for w in args.workers.split(",") if w.strip()]
    bad = [t for t in targets if t not in ("sipfront", "kamailio", "floor")]
    if bad or not targets or not workers or min(workers) < 1 or args.uacs < 1:
        ap.error("bad --targets/--workers/--uacs")
    for tool in ["sipp", "timeout"] + (["cargo"] if "floor" in targets and not args.floor_bin else []):
        if not shutil.which(tool):
            log("compare: %s not found (apt-get install -y sip-tester kamailio)" % tool)
            sys.exit(2)
    if "kamailio" in targets and not os.path.exists(args.kamailio_bin):
        log("compare: kamailio not found (apt-get install -y kamailio)")
        sys.exit(2)

    for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(s, _on_signal)

    if "floor" in targets:
        args.floor_bin = ensure_floor(args)
    if "sipfront" in targets:
        args.sipfront_bin = ensure_sipfront(args)

    tmp = tempfile.mkdtemp(prefix="sipfront-loadtest-")
    # Snapshot the binaries: a cargo build during the run must not change
    # what the later runs measure.
    args.shown_bin, args.bin_built = {}, {}
    for attr in ("sipfront_bin", "floor_bin"):
        src = getattr(args, attr, None)
        if src and os.path.exists(src) and attr.split("_")[0] in targets:
            os.makedirs(os.path.join(tmp, "bin"), exist_ok=True)
            dst = os.path.join(tmp, "bin", os.path.basename(src))
            shutil.copy2(src, dst)
            args.shown_bin[dst] = src
            args.bin_built[src] = os.path.getmtime(src)
            setattr(args, attr, dst)
    started = datetime.datetime.now().astimezone()
    load_before = os.getloadavg()
    runs = {}
    mem = []
    try:
        log("compare: %d uac x %d cps x %d calls each; targets %s; workers %s; logs in %s" % (
            args.uacs, args.rate, args.calls, ",".join(targets), ",".join(map(str, workers)), tmp))
        ports_for = {}
        for w in workers:
            ports_for[w] = pick_uac_ports(args, w)
            log("compare: workers=%d: uac ports %s" % (w, ",".join(map(str, ports_for[w]))))
        for rep in range(args.repeat):
            for w in workers:
                for t in targets:
                    log("compare: run %s workers=%d rep=%d ..." % (t, w, rep + 1))
                    r = run_one(t, w, rep, args, tmp, ports_for[w])
                    runs.setdefault((t, w), []).append(r)
                    log("compare:   %s ok=%d failed=%d retrans=%d reord=%d cpu=%s s idle=%s%% split=%s cpu/1000=%s %s" % (
                        "PASS" if r["pass"] else "FAIL", r["ok"], r["failed"], r["retrans"], r["reord"],
                        fmt(r["cpu_s"], "%.2f"), fmt(r["idle_pct"], "%.1f"), r["split"],
                        fmt(r["cpu_per_1k"], "%.4f"), "" if r["pass"] else "\n    " +
                        "\n    ".join(x.replace("\n", "\n      ") for x in r["why"])))
        if args.mode == "stateful":
            for t in [t for t in targets if t in ("sipfront", "kamailio")]:
                log("compare: memory per live transaction, %s ..." % t)
                m = measure_memory(t, max(workers), args, tmp)
                mem.append(m)
                log("compare:   live=%d pss %s -> %s kB: %s bytes/txn %s" % (
                    m["live"], m["pss_base_kb"], m["pss_peak_kb"],
                    fmt(m["bytes_per_txn"], "%.0f"), "; ".join(m["why"])))
    finally:
        cleanup()
        if args.keep:
            log("compare: logs kept in %s" % tmp)
        else:
            shutil.rmtree(tmp, ignore_errors=True)

    rows = [aggregate(runs[(t, w)]) for w in workers for t in targets if (t, w) in runs]
    head, cells = table(rows, args.repeat)
    print(render_text(head, cells))
    ok = all(r["pass"] for r in rows)

    cmds = {}
    for (t, w), rs in runs.items():
        if rs[0]["cmd"] and t not in cmds:
            cmds[t] = rs[0]["cmd"]
    u0 = uac_cmd(args.uac_port_base, args, "uac0_stat.csv", "uac0_errors.log")
    md = [
        "# sipfront load comparison (%s): latest run" % args.mode,
        "",
        "Generated by `loadtest/compare.sh %s` on %s." % (" ".join(shlex.quote(a) for a in sys.argv[1:]),
                                                        started.strftime("%Y-%m-%d %H:%M %Z")),
        "",
        "- Host: %s, %d CPUs, kernel %s; load average before the run %.2f/%.2f/%.2f (shared, noisy box)" % (
            platform.node(), os.cpu_count(), platform.release(), *load_before),
        "- Commit: %s%s" % (git_rev(), "".join(
            "; %s built %s" % (os.path.relpath(src, REPO), datetime.datetime.fromtimestamp(
                built).astimezone().strftime("%Y-%m-%d %H:%M:%S %Z"))
            for src, built in args.bin_built.items())),
        "- Load per target: %d SIPp uac x %d calls/s x %d calls (built-in `uac` scenario, `-d 0`) -> "
        "Call-ID hash -> 2 SIPp `uas` (ports %s)" % (args.uacs, args.rate, args.calls,
                                                   ",".join(map(str, args.backend_ports))),
        "- CPU = utime+stime of the target's whole process tree (/proc/PID/stat) during the load, "
        "per 1000 completed calls; idle CPU = %% of one core over %.0f s without traffic; "
        "split = share of the load CPU taken by the busiest two threads/processes" % args.idle,
        "- reord. = out-of-order messages SIPp tolerated (e.g. a 180 overtaken by its 200; "
        "%s)" % ("SIPp aborts on them: --strict" if not TOLERANT else
                 "`-default_behaviors all,-abortunexp`; a multi-process Kamailio on one socket reorders"),
        "- `vs Kamailio` / `vs floor` = this row's CPU per call / that target's at the same worker count "
        "(sipfront's goal vs Kamailio: <= 0.20x)",
        "- Pass = every call completed, 0 failed%s, idle CPU < %d%% of a core" % (
            "" if args.quick else ", 0 retransmissions", int(100 * IDLE_BUSY_LIMIT)),
        "",
        render_md(head, cells),
        "",
    ]
    if mem:
        md += ["Memory per live INVITE transaction (backends hold each call %.0f s; one uac at %d calls/s; "
               "PSS growth of the process tree / INVITEs in flight):" % (MEM_HOLD_S, args.mem_rate), "",
               "| target | live transactions | PSS before kB | PSS at peak kB | bytes per transaction |",
               "|---|---|---|---|---|"]
        for m in mem:
            md.append("| %s | %d | %s | %s | %s |" % (m["target"], m["live"], m["pss_base_kb"], m["pss_peak_kb"],
                                                     fmt(m["bytes_per_txn"], "%.0f")))
        md.append("")
    md += [
        "Commands (first worker count shown; each wrapped in `timeout -k 5 <bound>`):",
        "",
        "```",
    ]
    for p in args.backend_ports:
        md.append(" ".join(uas_cmd(p)))
    for t in targets:
        if t in cmds:
            md.append(cmds[t])
    md.append(" ".join(shlex.quote(c) for c in u0) + "   # x%d in parallel" % args.uacs)
    md += ["```", "", "uac local ports per worker count (probed so SO_REUSEPORT spreads them): " +
           "; ".join("workers=%d: %s" % (w, ",".join(map(str, ports_for[w]))) for w in workers), ""]
    failures = [(t, w, r) for (t, w), rs in runs.items() for r in rs if not r["pass"]]
    if failures:
        md += ["Failures:", ""]
        for t, w, r in failures:
            md.append("- %s workers=%d rep=%d: %s" % (t, w, r["rep"] + 1, r["why"][0].splitlines()[0] if r["why"] else "?"))
        md.append("")
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write("\n".join(md))
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump({"args": {k: v for k, v in vars(args).items()},
                   "started": started.isoformat(), "rows": rows,
                   "runs": [r for rs in runs.values() for r in rs], "memory": mem}, f, indent=1, default=str)
    log("compare: wrote %s" % args.out)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    try:
        main()
    finally:
        cleanup()
