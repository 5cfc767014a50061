#!/usr/bin/env python3
"""ingest_vs_vm_prom - remote-write ingest cost of Vigil, VictoriaMetrics and Prometheus.

One run sends the same node_exporter-like stream (bench/loadgen: counters
that rise, gauges that wander, 30 s samples, 100 series per "node", requests
of --series-per-request series x --steps-per-request steps over --conns
connections) to vigil-collector, victoria-metrics and prometheus
--web.enable-remote-write-receiver, one system at a time so each has the
machine to itself while measured, each from an empty data dir. The data
starts --hours in the past and advances in time order, so Vigil and
Prometheus cut blocks from their heads during the run.

Per system it prints, and as ratios Vigil / peer:
  samples per CPU-second  samples accepted / (utime + stime of the server
                          from the first request until it is idle again,
                          after its flush: background merges and block
                          cuts caused by the ingest are counted)
  bytes per sample        on disk after the head is flushed:
                          VictoriaMetrics: /internal/force_flush, then du of
                            its whole data dir (parts + indexdb);
                          Prometheus: an admin-API snapshot (head written as
                            a block), du of the snapshot;
                          Vigil: it has no flush-the-head call and keeps the
                            newest 1-1.5 block ranges in the head + WAL, so it
                            is du of its block dirs / numSamples in their
                            meta.json (index included); the WAL is reported
                            separately
  peak RSS per series     VmHWM / active series

  bench/ingest_vs_vm_prom/run.py [--series 200000] [--hours 3.5] [--runs 1]
        [--systems vigil,vm,prom] [--conns 4] [--series-per-request 2000]
        [--perf SECONDS] [--keep DIR]

--perf N records `perf record -g` of the collector for N seconds mid-ingest
into DIR/perf.data (needs perf; the report is printed at the end).
"""
import argparse
import glob
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (BUILD, cpu_seconds, free_port, machine, peak_rss_bytes, start, stop,  # noqa: E402
                    wait_port)  # noqa: E402


def http(url, method="GET", timeout=600):
    req = urllib.request.Request(url, method=method, data=b"" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return r.read()


def du(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.lstat(os.path.join(root, f)).st_blocks * 512
            except OSError:
                pass
    return total


def wait_idle(pid, quiet=0.05, timeout=600):
    """Until the process burns less than `quiet` CPU-seconds in 2 s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        before = cpu_seconds(pid)
        time.sleep(2)
        if cpu_seconds(pid) - before < quiet:
            return
    print("  (still busy after %ds)" % timeout)


class Vigil:
    name = "vigil"

    def __init__(self, d, args):
        self.dir = os.path.join(d, "vigil")
        self.port = free_port()
        cfg = os.path.join(d, "vigil.yml")
        with open(cfg, "w") as f:
            f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                    "limits:\n  default: {ingestion_rate: 1e12, ingestion_burst: 1e12, "
                    "max_series: 100000000}\n" % (self.port, self.dir))
        self.argv = [os.path.join(BUILD, "vigil-collector"), "--config", cfg,
                     "--log-level", "warn"]
        self.write = "/api/v1/write"

    def flush(self, base):
        """Vigil cuts blocks by itself; nothing to force."""

    def disk(self):
        blocks, samples, chunks, index = 0, 0, 0, 0
        for meta in glob.glob(os.path.join(self.dir, "**", "meta.json"), recursive=True):
            with open(meta) as f:
                samples += json.load(f)["stats"]["numSamples"]
            bdir = os.path.dirname(meta)
            blocks += du(bdir)
            chunks += du(os.path.join(bdir, "chunks"))
            index += os.lstat(os.path.join(bdir, "index")).st_blocks * 512
        wal = sum(du(p) for p in glob.glob(os.path.join(self.dir, "**", "wal"), recursive=True))
        per = float(samples or 1)
        return blocks, samples, ("blocks %d MiB (chunks %.2f + index %.2f + rest %.2f B/sample), "
                                 "%d samples in blocks; WAL %d MiB" % (
                                     blocks >> 20, chunks / per, index / per,
                                     (blocks - chunks - index) / per, samples, wal >> 20))


class VM:
    name = "victoriametrics"

    def __init__(self, d, args):
        self.dir = os.path.join(d, "vm")
        self.port = free_port()
        self.argv = ["victoria-metrics", "-storageDataPath=" + self.dir, "-retentionPeriod=100y",
                     "-httpListenAddr=127.0.0.1:%d" % self.port, "-loggerLevel=WARN"]
        self.write = "/api/v1/write"

    def flush(self, base):
        http(base + "/internal/force_flush")

    def disk(self):
        return du(self.dir), None, "data dir"


class Prom:
    name = "prometheus"

    def __init__(self, d, args):
        self.dir = os.path.join(d, "prom")
        self.port = free_port()
        cfg = os.path.join(d, "prometheus.yml")
        with open(cfg, "w") as f:  # OOO window: several connections may reorder a little
            f.write("global: {scrape_interval: 1h, evaluation_interval: 1h}\n"
                    "storage: {tsdb: {out_of_order_time_window: 30m}}\n")
        self.argv = ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + self.dir,
                     "--storage.tsdb.retention.time=100y",
                     "--web.listen-address=127.0.0.1:%d" % self.port,
                     "--web.enable-remote-write-receiver", "--web.enable-admin-api",
                     "--log.level=warn"]
        self.write = "/api/v1/write"
        self.snap = None

    def flush(self, base):
        doc = json.loads(http(base + "/api/v1/admin/tsdb/snapshot", "POST"))
        self.snap = os.path.join(self.dir, "snapshots", doc["data"]["name"])

    def disk(self):
        return du(self.snap), None, "snapshot with head"


def perf_record(pid, seconds, out):
    return subprocess.Popen(["perf", "record", "-g", "-o", out, "-p", str(pid), "--",
                             "sleep", str(seconds)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def run_one(cls, d, args, end_ms):
    s = cls(d, args)
    base = "http://127.0.0.1:%d" % s.port
    p = start(s.argv, os.path.join(d, s.name + ".log"))
    try:
        wait_port(s.port, timeout=60)
        time.sleep(1)
        c0 = cpu_seconds(p.pid)
        t0 = time.monotonic()
        lg = subprocess.Popen([os.path.join(BUILD, "loadgen"), "--series", str(args.series),
                               "--hours", str(args.hours), "--step", str(args.step),
                               "--end", str(end_ms), "--conns", str(args.conns),
                               "--series-per-request", str(args.series_per_request),
                               "--steps-per-request", str(args.steps_per_request),
                               "--url", base + s.write],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        pr = None
        if args.perf and s.name == "vigil":
            time.sleep(min(10, args.perf))
            pr = perf_record(p.pid, args.perf, os.path.join(d, "perf.data"))
        out, _ = lg.communicate()
        wall = time.monotonic() - t0
        if pr:
            pr.wait()
        c_send = cpu_seconds(p.pid) - c0
        line = [ln for ln in out.splitlines() if ln.startswith("loadgen: url=")]
        if lg.returncode != 0 or not line:
            raise RuntimeError("loadgen into %s failed:\n%s" % (s.name, out[-3000:]))
        kv = dict(f.split("=", 1) for f in line[-1].split()[1:] if "=" in f)
        samples = int(kv["samples"])
        s.flush(base)
        wait_idle(p.pid)
        cpu = cpu_seconds(p.pid) - c0
        rss = peak_rss_bytes(p.pid)
        stop(p)
        disk, disk_samples, how = s.disk()
        r = {"name": s.name, "samples": samples, "wall": wall, "cpu": cpu, "cpu_send": c_send,
             "sps_cpu": samples / cpu, "rate": samples / wall, "rss": rss,
             "rss_series": rss / args.series,
             "bps": disk / (samples if disk_samples is None else disk_samples or float("nan")),
             "disk": disk, "how": how,
             "retries": int(kv["retries"])}
        print("  %-16s %9d samples in %6.1fs (%7.0f/s) cpu %6.1fs (%.1fs while sending) "
              "-> %8.0f samples/cpu-s; %.2f B/sample (%s); peak RSS %d MiB = %.0f B/series; "
              "retries %d" % (s.name, samples, wall, r["rate"], cpu, c_send, r["sps_cpu"],
                              r["bps"], how, rss >> 20, r["rss_series"], r["retries"]),
              flush=True)
        return r
    finally:
        stop(p)


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=200000)
    ap.add_argument("--hours", type=float, default=3.5)
    ap.add_argument("--step", type=int, default=30)
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--systems", default="vigil,vm,prom")
    ap.add_argument("--conns", type=int, default=4)
    ap.add_argument("--series-per-request", type=int, default=2000)
    ap.add_argument("--steps-per-request", type=int, default=5)
    ap.add_argument("--perf", type=int, default=0)
    ap.add_argument("--keep", help="keep data dirs and logs under this dir")
    args = ap.parse_args()
    classes = {"vigil": Vigil, "vm": VM, "prom": Prom}
    chosen = [classes[n] for n in args.systems.split(",")]
    print("ingest_vs_vm_prom: %s" % machine())
    print("  %d series, %.1f h at %d s, %d conns, %d series x %d steps per request, %s" % (
        args.series, args.hours, args.step, args.conns, args.series_per_request,
        args.steps_per_request, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())))
    # Start on a 2 h boundary in the past, so the first block both stores cut is a whole one.
    two_h = 2 * 3600 * 1000
    start_ms = (int(time.time() * 1000) - int(args.hours * 3600 * 1000) - two_h) // two_h * two_h
    end_ms = start_ms + int(args.hours * 3600 * 1000)
    res = {}
    for run in range(args.runs):
        print("run %d" % (run + 1))
        for cls in chosen:
            d = args.keep and os.path.join(args.keep, "run%d" % run) or tempfile.mkdtemp(
                prefix="ingestbench.")
            os.makedirs(d, exist_ok=True)
            try:
                res.setdefault(cls.name, []).append(run_one(cls, d, args, end_ms))
            finally:
                if not args.keep:
                    shutil.rmtree(d, ignore_errors=True)
    summarize(res, args)


def summarize(res, args):
    def med(name, key):
        v = [r[key] for r in res[name]]
        return statistics.median(v), min(v), max(v)

    print("\nmedian (min-max) over %d run(s)" % args.runs)
    for name in res:
        for key, label, fmt in (("sps_cpu", "samples/cpu-s", "%.0f"), ("bps", "bytes/sample",
                                "%.3f"), ("rss_series", "RSS bytes/series", "%.0f")):
            m, lo, hi = med(name, key)
            print("  %-16s %-18s %s (%s-%s)" % (name, label, fmt % m, fmt % lo, fmt % hi))
    if "vigil" not in res:
        return
    v = {k: med("vigil", k)[0] for k in ("sps_cpu", "bps", "rss_series")}
    goals = {"victoriametrics": [("sps_cpu", 1.5, ">="), ("bps", 1.0, "<=")],
             "prometheus": [("rss_series", 0.5, "<=")]}
    for peer in ("victoriametrics", "prometheus"):
        if peer not in res:
            continue
        p = {k: med(peer, k)[0] for k in v}
        print("  vigil / %-16s samples/cpu-s %.2fx  bytes/sample %.2fx  RSS/series %.2fx" % (
            peer, v["sps_cpu"] / p["sps_cpu"], v["bps"] / p["bps"],
            v["rss_series"] / p["rss_series"]))
        for key, target, op in goals[peer]:
            ratio = v[key] / p[key]
            ok = ratio >= target if op == ">=" else ratio <= target
            print("    goal %s %s %.2fx of %s: %.2fx %s" % (key, op, target, peer, ratio,
                                                          "met" if ok else "NOT met"))


if __name__ == "__main__":
    main()
