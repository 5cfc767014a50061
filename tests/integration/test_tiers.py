#!/usr/bin/env python3
"""Retention tiers: data moves raw -> 5m -> 1h -> deleted, answers stay right.

Ten days of remote-write data with old timestamps (a gauge and two
counters, one with resets, every 60 s from 7 s past an hour boundary, so
no sample sits on a window edge). Ages count back from the tenant's newest
sample, so each phase restarts the collector on the same data directory
with tighter storage settings and waits for the block directories'
meta.json to show the move:

  1. raw only (downsampling off): reference answers for the first day;
  2. storage.downsample.5m_after 1d: 5m blocks appear, raw stays, the
     answers are unchanged (raw is the finest tier and still covers it);
  3. storage.retention.raw 2d: raw blocks of the first days go (their 5m
     copies exist); the first day is now read from 5m blocks;
  4. storage.downsample.1h_after 2d, storage.retention.5m 3d: 1h blocks
     appear, 5m blocks of the first days go; read from 1h blocks;
  5. storage.retention.1h 3d: nothing is left of the first day.

Checks at each step over the first day: sum_over_time, count_over_time and
max_over_time over hour-aligned [1h] ranges are exact (the ranges are whole
windows; the values are integers, so sums are exact in float). A plain
selector on 5m data gives the window's average. increase() on downsampled
data uses the counter aggregate: its points are the windows' last raw
samples with resets folded in, so it differs from raw only through
extrapolation to the range edges over at most one window; the tolerance is
res / range of the raw answer (5m over [1h]: 8.3%; 1h over [6h]: 16.7%), and
for the steady counter (constant rate) it is exact up to float error.
"""
import glob
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, api, free_port, http_get, wait_until  # noqa: E402
from ship_helpers import stop  # noqa: E402
import wire  # noqa: E402

H = 3600 * 1000
D = 24 * H
STEP = 60000
DAYS = 10
# Aligned to 486h (3^5 block ranges of 2h): the compactor's windows then start
# at T0, so the block holding day 1 ends by T0 + 6.75d, before every
# retention below reaches past it (newest sample T0 + 10d, minus 2d or 3d).
W486 = 486 * H
T0 = (int(time.time() * 1000) // W486 - 2) * W486
N = DAYS * D // STEP


def ts(i):
    return T0 + 7000 + i * STEP


def gauge(i):
    return float((i * 37) % 101)


def counters():
    """Values of the resetting counter (inst=a) and the steady one (inst=b)."""
    a, c = [], 0.0
    for i in range(N):
        c = 0.0 if i % 317 == 0 else c + 1 + (i % 5)
        a.append(c)
    return a, [2.0 * i for i in range(N)]


CA, CB = counters()


def send_all(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
    per = 720
    for i0 in range(0, N, per):
        r = range(i0, min(i0 + per, N))
        series = [({"__name__": "tier_gauge", "inst": "a"}, [(ts(i), gauge(i)) for i in r]),
                  ({"__name__": "tier_counter_total", "inst": "a"}, [(ts(i), CA[i]) for i in r]),
                  ({"__name__": "tier_counter_total", "inst": "b"}, [(ts(i), CB[i]) for i in r])]
        conn.request("POST", "/api/v1/write", body=wire.snappy_literal(wire.write_request(series)),
                     headers=hdr)
        resp = conn.getresponse()
        resp.read()
        assert resp.status == 204, resp.status
    conn.close()


def start(p, name, port, data_dir, storage):
    cfg = os.path.join(p.dir, name + ".yml")
    with open(cfg, "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                "storage: %s\n" % (port, data_dir, storage))
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def metas(data_dir):
    out = []
    for m in glob.glob(os.path.join(data_dir, "blocks", "default", "*", "meta.json")):
        try:
            with open(m) as f:
                d = json.load(f)
        except (OSError, ValueError):
            continue  # being deleted
        out.append((d["vigil"]["resolution"], d["minTime"], d["maxTime"]))
    return out


def wait_tiers(data_dir, what, fn):
    try:
        wait_until(what, fn, timeout=180)
    except AssertionError:
        for m in sorted(metas(data_dir), key=lambda m: (m[0], m[1])):
            print("block res=%d [%+.2fd, %+.2fd)" % (m[0], (m[1] - T0) / D, (m[2] - T0) / D))
        raise


def tier_min(data_dir, res):
    ms = [m[1] for m in metas(data_dir) if m[0] == res]
    return min(ms) if ms else None


def query(base, q, t_ms):
    out = {}
    for r in api(base, "/api/v1/query", query=q, time="%.3f" % (t_ms / 1000.0))["result"]:
        out[r["metric"].get("inst", "")] = float(r["value"][1])
    return out


def raw_window(t_end, rng):
    """Indexes of the samples in (t_end - rng, t_end]."""
    lo = (t_end - rng - T0 - 7000) // STEP + 1
    hi = (t_end - T0 - 7000) // STEP
    return range(max(lo, 0), min(hi, N - 1) + 1)


HOURS = [T0 + k * H for k in range(2, 23)]
SIX = [T0 + k * 6 * H for k in (1, 2, 3)]


def check_exact(base, what):
    for t in HOURS:
        w = raw_window(t, H)
        want = {"sum_over_time": sum(gauge(i) for i in w), "count_over_time": float(len(w)),
                "max_over_time": max(gauge(i) for i in w)}
        for fn, v in want.items():
            got = query(base, "%s(tier_gauge[1h])" % fn, t)
            assert got.get("a") == v, "%s: %s at %d: %r, want %r" % (what, fn, t, got, v)


def check_avg_5m(base, what):
    for t in HOURS[:5]:
        w = raw_window(t - 1, 300000)
        want = sum(gauge(i) for i in w) / len(w)
        got = query(base, "tier_gauge", t)
        assert abs(got["a"] - want) < 1e-9, "%s: avg at %d: %r, want %r" % (what, t, got, want)


def check_increase(base, ref, rng, tol, what):
    worst = 0.0
    for (t, r), want in ref.items():
        if r != rng:
            continue
        got = query(base, "increase(tier_counter_total[%s])" % rng, t)
        for inst in ("a", "b"):
            err = abs(got[inst] - want[inst]) / want[inst]
            worst = max(worst, err)
            limit = tol if inst == "a" else 1e-9
            assert err <= limit, "%s: increase[%s] %s at %d: %r, raw %r" % (
                what, rng, inst, t, got[inst], want[inst])
    print("%s: increase[%s] worst relative error %.4f (limit %.4f)" % (what, rng, worst, tol))


def reference(base):
    ref = {}
    for t in HOURS:
        ref[(t, "1h")] = query(base, "increase(tier_counter_total[1h])", t)
    for t in SIX:
        ref[(t, "6h")] = query(base, "increase(tier_counter_total[6h])", t)
    return ref


def deleted(base, tier):
    _, body = http_get(base + "/metrics")
    key = 'vigil_tsdb_blocks_deleted_total{reason="retention",tier="%s"}' % tier
    for line in body.decode().splitlines():
        if line.startswith(key + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main():
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        port = free_port()
        off = "downsample: {5m_after: 0, 1h_after: 0}"
        base = start(p, "c1", port, data_dir, "{%s}" % off)
        send_all(port)
        wait_until("raw blocks cut", lambda: any(m[0] == 0 and m[2] >= T0 + 9 * D
                                                 for m in metas(data_dir)), timeout=180)
        assert all(m[0] == 0 for m in metas(data_dir))
        check_exact(base, "raw")
        ref = reference(base)
        for (t, r), v in ref.items():  # raw: a steady counter's increase is exact
            rng = H if r == "1h" else 6 * H
            if t - rng > T0:  # (no extrapolation below zero at the very first sample)
                assert abs(v["b"] - rng / 30000.0) < 1e-6, (t, r, v)
        print("phase 1 (raw): %d blocks" % len(metas(data_dir)))
        stop(p, "c1")

        base = start(p, "c2", port, data_dir, "{downsample: {5m_after: 1d, 1h_after: 0}}")
        wait_tiers(data_dir, "5m blocks", lambda: tier_min(data_dir, 300000) == T0)
        assert tier_min(data_dir, 0) == T0
        check_exact(base, "5m copies, raw kept")
        check_increase(base, ref, "1h", 1e-12, "5m copies, raw kept")
        print("phase 2 (raw + 5m): %d blocks" % len(metas(data_dir)))
        stop(p, "c2")

        base = start(p, "c3", port, data_dir,
                     "{downsample: {5m_after: 1d, 1h_after: 0}, retention: {raw: 2d}}")
        wait_tiers(data_dir, "raw of day 1 deleted", lambda: tier_min(data_dir, 0) >= T0 + D)
        assert tier_min(data_dir, 300000) == T0
        assert deleted(base, "raw") >= 1
        check_exact(base, "5m")
        check_avg_5m(base, "5m")
        check_increase(base, ref, "1h", 300000 / H, "5m")
        print("phase 3 (5m serves day 1): %d blocks" % len(metas(data_dir)))
        stop(p, "c3")

        base = start(p, "c4", port, data_dir,
                     "{downsample: {5m_after: 1d, 1h_after: 2d}, retention: {raw: 2d, 5m: 3d}}")
        wait_tiers(data_dir, "5m of day 1 deleted", lambda: (tier_min(data_dir, 300000) or T0 + D) >= T0 + D
                   and tier_min(data_dir, 3600000) == T0)
        assert deleted(base, "5m") >= 1
        check_exact(base, "1h")
        check_increase(base, ref, "6h", 3600000 / (6 * H), "1h")
        print("phase 4 (1h serves day 1): %d blocks" % len(metas(data_dir)))
        stop(p, "c4")

        base = start(p, "c5", port, data_dir, "{downsample: {5m_after: 1d, 1h_after: 2d}, "
                     "retention: {raw: 2d, 5m: 3d, 1h: 3d}}")
        wait_tiers(data_dir, "day 1 gone", lambda: min(m[1] for m in metas(data_dir)) >= T0 + D)
        assert deleted(base, "1h") >= 1
        for t in HOURS:
            assert query(base, "count_over_time(tier_gauge[1h])", t) == {}, t
        # the recent days are still raw and whole
        t = T0 + 9 * D + 12 * H
        assert query(base, "count_over_time(tier_gauge[1h])", t) == {"a": 60.0}
        print("phase 5 (day 1 deleted): %d blocks" % len(metas(data_dir)))
        p.check_alive()
    print("test_tiers: OK")


if __name__ == "__main__":
    main()
