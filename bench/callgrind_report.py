#!/usr/bin/env python3
"""Inclusive cost per function of a callgrind file, per measured run.

callgrind_annotate splits a function's cost by the source file of each
instruction, so a function that inlines code from other files shows up as
several partial rows. This merges them: a function's inclusive cost is its
own instructions plus the inclusive cost of every call it makes, whatever
file the instructions came from. Also prints how often malloc/free/realloc
were called.

    callgrind_report.py FILE RUNS [TOP [EXECUTED]]

RUNS is how many runs were measured (their costs collected); EXECUTED how
many ran in all, warm-up included: callgrind counts the calls of every run,
so call counts are divided by EXECUTED.
"""
import re
import sys
from collections import defaultdict


def main():
    path, runs = sys.argv[1], int(sys.argv[2])
    top = int(sys.argv[3]) if len(sys.argv) > 3 else 25
    executed = int(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[4] else runs
    names = {}
    self_cost = defaultdict(int)
    incl_calls = defaultdict(int)
    call_count = defaultdict(int)
    fn = None
    pending_call = None  # (callee, count) waiting for its cost line
    total = 0

    def name_of(spec):
        m = re.match(r"\((\d+)\)(?:\s+(.*))?", spec)
        if not m:
            return spec
        if m.group(2) is not None:
            names[m.group(1)] = m.group(2)
        return names.get(m.group(1), spec)

    callee = None
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line:
                continue
            if line.startswith("fn="):
                fn = name_of(line[3:])
                continue
            if line.startswith("cfn="):
                callee = name_of(line[4:])
                continue
            if line.startswith("calls="):
                pending_call = (callee, int(line[6:].split()[0]))
                continue
            if line.startswith(("summary:", "totals:")):
                total = total or int(line.split()[1])
                continue
            c = line[0]
            if c.isdigit() or c in "+-*":
                parts = line.split()
                cost = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
                if pending_call is not None:
                    g, n = pending_call
                    if g != fn:
                        incl_calls[fn] += cost
                    call_count[(fn, g)] += n
                    pending_call = None
                else:
                    self_cost[fn] += cost
    incl = {f: self_cost[f] + incl_calls[f] for f in set(self_cost) | set(incl_calls)}

    def short(n):
        n = re.sub(r"^<(.*) as [^>]*>", r"\1", n)
        return n[:150]

    print(f"   {total / runs:10.0f}  total per run")
    calls_to = defaultdict(int)
    for (f, g), n in call_count.items():
        if f != g:
            calls_to[g] += n
    print(f"   {'incl':>10} {'self':>7} {'calls':>6}  function (per run)")
    rows = sorted(incl.items(), key=lambda kv: -kv[1])
    start = next((i for i, r in enumerate(rows) if "sf_step_" in r[0]), 0)
    for f, c in rows[start:start + top]:
        n = calls_to[f] / executed
        print(f"   {c / runs:10.0f} {self_cost[f] / runs:7.0f} {n:6.1f}  {short(f)}")
    alloc = defaultdict(int)
    for (_, g), n in call_count.items():
        for k in ("malloc", "free", "realloc", "calloc"):
            if g == k or g.startswith(k + "'") or g.endswith(":" + k):
                alloc[k] += n
    if alloc:
        print("   calls per run: " + ", ".join(f"{k} {v / executed:.2f}" for k, v in sorted(alloc.items())))


main()
