#!/usr/bin/env python3
"""Summarises an A/B file of examples/dataplane -bench -timeline runs
(pacing-ab.txt): per arm, the medians (and ranges) of updraft's critical p99
before and during the update, its longest gap, tableflip alone's, the ratio,
and the worst latency in three windows of the update (the store snapshot, the
bulk hand-over, the switch); then, pooled over the other factor, a permutation
test of each factor's effect on the medians. Python 3 standard library only."""
import random
import re
import statistics as st
import sys


def ms(v, unit):
    return float(v) / 1000 if unit == "µs" else float(v) * (1000 if unit == "s" else 1)


def parse(path):
    arms, cur = {}, None
    for line in open(path, encoding="utf-8"):
        m = re.match(r"== warming-nice=(\S+) snapshot-cpu=(\S+)", line)
        if m:
            cur = (m.group(1), m.group(2))
            arms.setdefault(cur, []).append({})
            continue
        if cur is None:
            continue
        d = arms[cur][-1]
        m = re.match(r"updraft +critical .*gap=([\d.]+)ms.*before=[^/]+/([\d.]+)(ms|µs) during=[^/]+/([\d.]+)(ms|µs)", line)
        if m:
            d["gap"], d["p99b"], d["p99d"] = float(m.group(1)), ms(m.group(2), m.group(3)), ms(m.group(4), m.group(5))
        m = re.search(r"phases.*snapshot@([\d.]+)ms\+([\d.]+)(ms|s).*update@([\d.]+)ms\+([\d.]+)(ms|s)", line)
        if m and line.startswith("updraft"):
            d["snap"] = float(m.group(1)) + ms(m.group(2), m.group(3))
            d["switch"] = float(m.group(4)) + ms(m.group(5), m.group(6))
        if line.startswith("updraft   worst"):
            d["tl"] = [(int(a), float(b)) for a, b in re.findall(r" (-?\d+):([\d.]+)", line)]
        m = re.match(r"critical: updraft failed=(\d+) gap=[\d.]+ms sessions=(\d+/\d+) .*tableflip failed=\d+ gap=([\d.]+)ms.*ratio=([\d.]+)", line)
        if m:
            d["failed"], d["kept"], d["tf"], d["ratio"] = int(m.group(1)), m.group(2), float(m.group(3)), float(m.group(4))
    return {k: [r for r in runs if "ratio" in r and "tl" in r] for k, runs in arms.items()}


def worst(r, lo, hi):
    return max([v for t, v in r["tl"] if lo <= t < hi] or [0])


def med(runs, f):
    v = [f(r) for r in runs]
    return "%.1f (%.1f-%.1f)" % (st.median(v), min(v), max(v))


def permutation(a, b, rounds=20000):
    obs, pool, n, hits = abs(st.median(a) - st.median(b)), a + b, len(a), 0
    rng = random.Random(1)
    for _ in range(rounds):
        rng.shuffle(pool)
        hits += abs(st.median(pool[:n]) - st.median(pool[n:])) >= obs
    return hits / rounds


def main(path):
    arms = parse(path)
    for (nice, share), runs in arms.items():
        print("warming-nice=%s snapshot-cpu=%s: %d runs" % (nice, share, len(runs)))
        print("  critical p99 before %s ms, during %s ms, during/before %s" % (
            med(runs, lambda r: r["p99b"]), med(runs, lambda r: r["p99d"]), med(runs, lambda r: r["p99d"] / r["p99b"])))
        print("  gap %s ms, tableflip alone's %s ms, ratio %s; ratio >= 100 in %d, gap <= tableflip's in %d; failed %d; sessions %s" % (
            med(runs, lambda r: r["gap"]), med(runs, lambda r: r["tf"]), med(runs, lambda r: r["ratio"]),
            sum(r["ratio"] >= 100 for r in runs), sum(r["gap"] <= r["tf"] for r in runs),
            sum(r["failed"] for r in runs), sorted({r["kept"] for r in runs})))
        print("  snapshot phase ends at %s ms; worst latency in it %s ms, in the bulk (its end+20 to the switch-20) %s ms, around the switch (-20 to +100) %s ms" % (
            med(runs, lambda r: r["snap"]), med(runs, lambda r: worst(r, 0, int(r["snap"]))),
            med(runs, lambda r: worst(r, int(r["snap"]) + 20, int(r["switch"]) - 20)),
            med(runs, lambda r: worst(r, int(r["switch"]) - 20, int(r["switch"]) + 100))))
    for factor, idx, off in (("snapshot-cpu", 1, "0"), ("warming-nice", 0, "-1")):
        for name, f in (("p99 during", lambda r: r["p99d"]), ("gap", lambda r: r["gap"]), ("ratio", lambda r: r["ratio"])):
            a = [f(r) for k, runs in arms.items() if k[idx] == off for r in runs]
            b = [f(r) for k, runs in arms.items() if k[idx] != off for r in runs]
            print("%s off (%s) vs on, pooled: %s median %.1f vs %.1f (%d vs %d runs), permutation p=%.4f" % (
                factor, off, name, st.median(a), st.median(b), len(a), len(b), permutation(a, b)))


if __name__ == "__main__":
    main(sys.argv[1])
