#!/usr/bin/env python3
"""query_vs_prom_vm - range-query latency of Vigil, Prometheus and VictoriaMetrics.

One run: start vigil-collector, victoria-metrics (-search.disableCache, so
repeats are not answered from its result cache) and prometheus
(--web.enable-remote-write-receiver) on free loopback ports; backfill the same
node_exporter-like dataset into each with bench's loadgen (remote-write in
time order, one target after the other so ingestion never competes for the
two cores); wait until each answers the full series count; then time a fixed
set of range queries over the whole span, each repeated N times round-robin
across the three systems, and print the median latency per system, the
ratios, and whether the three returned the same number of series.

Latency is the wall time of one HTTP POST /api/v1/query_range, body read in
full (so JSON encoding counts, as it does for Grafana).

  bench/query_vs_prom_vm/run.py [--series 10000] [--hours 24] [--step 30]
                                [--query-step 60] [--repeats 5] [--keep DIR]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (BUILD, cpu_seconds, free_port, machine, peak_rss_bytes, start, stop,  # noqa: E402
                    wait_port)  # noqa: E402

QUERIES = [
    ("rate_sum_by_job", "sum by (job) (rate(node_cpu_seconds_total[5m]))"),
    ("histogram_quantile",
     "histogram_quantile(0.9, sum by (le) (rate(http_request_duration_seconds_bucket[5m])))"),
    ("topk", "topk(5, rate(node_network_receive_bytes_total[5m]))"),
    ("regex_matchers",
     'sum by (instance) (rate(node_cpu_seconds_total{mode=~"user|system|iowait",'
     'instance=~"host-00[0-4].*"}[5m]))'),
    ("over_time_many", 'avg_over_time(node_cpu_seconds_total{cpu="0"}[10m])'),
]


def post(base, path, timeout=600, **params):
    data = urllib.parse.urlencode(params).encode()
    req = urllib.request.Request(base + path, data=data,
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.read()
    except urllib.error.HTTPError as e:
        raise RuntimeError("%s%s %s: %s" % (base, path, e.code, e.read()[:500])) from None


def query_range(base, q, start, end, step):
    body = post(base, "/api/v1/query_range", query=q, start=str(start), end=str(end),
                step=str(step))
    doc = json.loads(body)
    if doc.get("status") != "success":
        raise RuntimeError("%s: %s" % (base, doc))
    return doc["data"]["result"]


def instant(base, q, t):
    doc = json.loads(post(base, "/api/v1/query", query=q, time=str(t)))
    if doc.get("status") != "success":
        raise RuntimeError("%s: %s" % (base, doc))
    return doc["data"]["result"]


class System:
    def __init__(self, name, argv, port, write_path, log, cwd=None):
        self.name, self.port = name, port
        self.base = "http://127.0.0.1:%d" % port
        self.write_url = self.base + write_path
        self.proc = start(argv, log, cwd=cwd)
        wait_port(port, timeout=60)


def start_systems(d):
    out = []
    p = free_port()
    cfg = os.path.join(d, "vigil.yml")
    with open(cfg, "w") as f:  # the default tenant limit (100 k samples/s) would pace the backfill
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                "limits:\n  default: {ingestion_rate: 1e12, ingestion_burst: 1e12, "
                "max_series: 100000000}\n" % (p, os.path.join(d, "vigil")))
    out.append(System("vigil", [os.path.join(BUILD, "vigil-collector"), "--config", cfg,
                                "--log-level", "warn"],
                      p, "/api/v1/write", os.path.join(d, "vigil.log")))
    p = free_port()
    out.append(System("victoriametrics", [
        "victoria-metrics", "-storageDataPath=" + os.path.join(d, "vm"), "-retentionPeriod=10y",
        "-httpListenAddr=127.0.0.1:%d" % p, "-search.disableCache", "-loggerLevel=WARN"],
        p, "/api/v1/write", os.path.join(d, "vm.log")))
    p = free_port()
    cfg = os.path.join(d, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1h, evaluation_interval: 1h}\n")
    out.append(System("prometheus", [
        "prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + os.path.join(d, "prom"),
        "--storage.tsdb.retention.time=10y", "--web.listen-address=127.0.0.1:%d" % p,
        "--web.enable-remote-write-receiver", "--log.level=warn"],
        p, "/api/v1/write", os.path.join(d, "prom.log")))
    return out


def backfill(s, args, end_ms):
    t0 = time.monotonic()
    out = subprocess.run([os.path.join(BUILD, "loadgen"), "--series", str(args.series),
                          "--hours", str(args.hours), "--step", str(args.step),
                          "--end", str(end_ms), "--url", s.write_url],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    el = time.monotonic() - t0
    print("  %-16s %5.1fs  %s" % (s.name, el, out.stdout.strip().splitlines()[-1]
                                   if out.stdout.strip() else ""))
    if out.returncode != 0:
        raise RuntimeError("loadgen into %s failed:\n%s" % (s.name, out.stdout[-3000:]))
    return el


def wait_series(s, expect, t, timeout=300):
    """Until count of every series at t is expect (VM makes new data searchable in ~1-5 s)."""
    deadline = time.monotonic() + timeout
    got = None
    while time.monotonic() < deadline:
        try:
            r = instant(s.base, 'count({__name__=~".+"})', t)
            got = int(float(r[0]["value"][1])) if r else 0
            if got == expect:
                return
        except Exception as e:  # noqa: BLE001 - report the last problem below
            got = repr(e)
        time.sleep(1)
    raise RuntimeError("%s: %s series at the end of the data, want %d" % (s.name, got, expect))


def wait_idle(systems, timeout=300):
    """Until no system burns CPU (Prometheus compacts the backfilled head into
    2 h blocks, VictoriaMetrics merges parts): background work must not be
    timed as query latency."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = {s.name: cpu_seconds(s.proc.pid) for s in systems}
        time.sleep(3)
        busy = {s.name: cpu_seconds(s.proc.pid) - before[s.name] for s in systems}
        if all(v < 0.1 for v in busy.values()):
            return
        print("  waiting for background work: %s" % ", ".join(
            "%s %.2f CPU-s/3s" % kv for kv in busy.items()))
    print("  still busy after %ds; timing anyway" % timeout)


def bench(systems, start_s, end_s, args):
    rows = []
    for name, q in QUERIES:
        times = {s.name: [] for s in systems}
        counts = {}
        for s in systems:  # warm-up, and the series count
            counts[s.name] = len(query_range(s.base, q, start_s, end_s, args.query_step))
        for _ in range(args.repeats):
            for s in systems:
                t0 = time.perf_counter()
                query_range(s.base, q, start_s, end_s, args.query_step)
                times[s.name].append(time.perf_counter() - t0)
        med = {k: statistics.median(v) for k, v in times.items()}
        rows.append((name, q, med, counts))
        print("  %-20s vigil %8.1f ms  vm %8.1f ms  prom %8.1f ms  vigil/vm %5.2f  "
              "vigil/prom %5.2f  series %s" % (
                  name, med["vigil"] * 1e3, med["victoriametrics"] * 1e3,
                  med["prometheus"] * 1e3, med["vigil"] / med["victoriametrics"],
                  med["vigil"] / med["prometheus"],
                  "/".join(str(counts[k]) for k in ("vigil", "victoriametrics", "prometheus"))))
        sys.stdout.flush()
    return rows


def markdown(rows, args, nseries, ingest, rss):
    lines = ["%s, %s; %d series x %gh at %ds, query step %ds over the whole span, median of %d"
             % (time.strftime("%Y-%m-%d"), machine(), nseries, args.hours, args.step,
                args.query_step, args.repeats), "",
             "| query | vigil ms | VM ms | Prometheus ms | vigil/VM | vigil/Prom | series vigil/VM/Prom |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, q, med, counts in rows:
        lines.append("| `%s` | %.1f | %.1f | %.1f | %.2f | %.2f | %d/%d/%d |" % (
            q.replace("|", "\\|"), med["vigil"] * 1e3, med["victoriametrics"] * 1e3,
            med["prometheus"] * 1e3, med["vigil"] / med["victoriametrics"],
            med["vigil"] / med["prometheus"], counts["vigil"], counts["victoriametrics"],
            counts["prometheus"]))
    lines.append("")
    lines.append("Backfill (s): " + ", ".join("%s %.1f" % kv for kv in ingest.items()) +
                 "; peak RSS after the queries: " +
                 ", ".join("%s %.0f MiB" % (k, v / 2**20) for k, v in rss.items()))
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--series", type=int, default=10000)
    ap.add_argument("--hours", type=float, default=24)
    ap.add_argument("--step", type=int, default=30)
    ap.add_argument("--query-step", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", help="keep data and logs in this directory")
    ap.add_argument("--only-systems", action="store_true",
                    help="start and fill the systems, print their URLs and wait (for profiling)")
    args = ap.parse_args()
    d = args.keep or tempfile.mkdtemp(prefix="qbench-")
    for sub in ("vigil", "vm", "prom"):  # a kept dir from an earlier run holds newer data
        shutil.rmtree(os.path.join(d, sub), ignore_errors=True)
    os.makedirs(d, exist_ok=True)
    nseries = (args.series + 99) // 100 * 100
    # Data ends two minutes ago, on a whole query step, so every system has
    # it as history (VictoriaMetrics hides the last -search.latencyOffset).
    end_s = (int(time.time()) - 120) // args.query_step * args.query_step
    start_s = end_s - int(args.hours * 3600)
    systems = start_systems(d)
    try:
        print("backfill: %d series x %gh at %ds (%d samples each)" % (
            nseries, args.hours, args.step, nseries * (int(args.hours * 3600 / args.step) + 1)))
        ingest = {s.name: backfill(s, args, end_s * 1000) for s in systems}
        for s in systems:
            wait_series(s, nseries, end_s)
        wait_idle(systems)
        if args.only_systems:
            for s in systems:
                print("%s %s" % (s.name, s.base))
            print("range: start=%d end=%d" % (start_s, end_s))
            sys.stdout.flush()
            input("press enter to stop\n")
            return 0
        print("queries: %d repeats each, step %ds over [%d, %d]" % (
            args.repeats, args.query_step, start_s, end_s))
        rows = bench(systems, start_s, end_s, args)
        rss = {s.name: peak_rss_bytes(s.proc.pid) for s in systems}
        print()
        print(markdown(rows, args, nseries, ingest, rss))
    finally:
        for s in systems:
            stop(s.proc)
        if not args.keep:
            shutil.rmtree(d, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
