#!/usr/bin/env python3
"""agent_vs_vmagent - vigil-agent against vmagent on the same 200 targets.

One process serves the 237-family fixture (1857 samples) on 200 loopback
ports, so there are 200 distinct targets. vmagent (system package) and
vigil-agent scrape all of them at the same interval, at the same time, for
the same duration. vmagent remote-writes and vigil-agent uses its HTTP sink,
both to one blackhole receiver that reads the body and answers 204. The
bench prints CPU-seconds per million samples scraped and peak RSS for each,
and the ratios (Vigil / vmagent; lower is better for Vigil).

  bench/agent_vs_vmagent/run.py [--targets 200] [--interval 10] [--duration 120] [--zstd-level N]
"""
import argparse
import http.server
import os
import re
import sys
import tempfile
import threading
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (BUILD, SHARED, cpu_seconds, free_port, machine, peak_rss_bytes,  # noqa: E402
                    start, stop, wait_port)

FIXTURE = os.path.join(SHARED, "testdata", "exposition", "alltypes.237mfs.prom.txt")


class Quiet(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass


def serve_fixture(ports, body):
    class H(Quiet):
        def do_GET(self):
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    servers = []
    for p in ports:
        s = http.server.ThreadingHTTPServer(("127.0.0.1", p), H)
        threading.Thread(target=s.serve_forever, daemon=True).start()
        servers.append(s)
    return servers


def serve_blackhole(port, counter):
    class H(Quiet):
        def do_POST(self):
            n = int(self.headers.get("Content-Length", "0"))
            data = self.rfile.read(n)
            counter["bytes"] += len(data)
            counter["requests"] += 1
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    threading.Thread(target=s.serve_forever, daemon=True).start()
    return s


def scrape_metric(port, pattern):
    """Sum of the values of self-metric lines matching pattern on :port/metrics."""
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if re.match(pattern, line):
            total += float(line.rsplit(" ", 1)[1])
    return total


def write_configs(d, ports, interval, vigil_port, sink_port, zstd_level=0):
    targets = ", ".join("'127.0.0.1:%d'" % p for p in ports)
    prom = ("global: {scrape_interval: %ds, scrape_timeout: %ds}\n"
            "scrape_configs:\n  - job_name: bench\n    static_configs: [{targets: [%s]}]\n"
            % (interval, max(1, interval - 1), targets))
    with open(os.path.join(d, "prom.yml"), "w") as f:
        f.write(prom)
    agent = ("agent: {listen: '127.0.0.1:%d', node: bench, data_dir: '%s/vigil'}\n%s"
             "output:\n  http: {url: 'http://127.0.0.1:%d'}\n" % (vigil_port, d, prom, sink_port))
    if zstd_level:
        agent += "  zstd_level: %d\n" % zstd_level
    with open(os.path.join(d, "vigil.yml"), "w") as f:
        f.write(agent)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=200)
    ap.add_argument("--interval", type=int, default=10)
    ap.add_argument("--duration", type=int, default=120)
    ap.add_argument("--zstd-level", type=int, default=0, help="output.zstd_level (0: the default)")
    args = ap.parse_args()
    with open(FIXTURE, "rb") as f:
        body = f.read()
    ports = []
    while len(ports) < args.targets:  # free_port() can hand out the same port twice
        p = free_port()
        if p not in ports:
            ports.append(p)
    servers = serve_fixture(ports, body)
    counts = {"vm": {"bytes": 0, "requests": 0}, "vigil": {"bytes": 0, "requests": 0}}
    vm_sink, vigil_sink = free_port(), free_port()
    sinks = [serve_blackhole(vm_sink, counts["vm"]), serve_blackhole(vigil_sink, counts["vigil"])]
    vm_port, vigil_port = free_port(), free_port()
    with tempfile.TemporaryDirectory(prefix="vigil-bench-") as d:
        write_configs(d, ports, args.interval, vigil_port, vigil_sink, args.zstd_level)
        vm = start(["vmagent", "-promscrape.config=%s/prom.yml" % d,
                    "-remoteWrite.url=http://127.0.0.1:%d/api/v1/write" % vm_sink,
                    "-remoteWrite.tmpDataPath=%s/vmagent" % d, "-httpListenAddr=127.0.0.1:%d" % vm_port,
                    "-loggerLevel=ERROR"], os.path.join(d, "vmagent.log"))
        vg = start([os.path.join(BUILD, "vigil-agent"), "--config", "%s/vigil.yml" % d,
                    "--log-level", "warn"], os.path.join(d, "vigil.log"))
        try:
            wait_port(vm_port)
            wait_port(vigil_port)
            c0 = {"vm": cpu_seconds(vm.pid), "vigil": cpu_seconds(vg.pid)}
            s0 = {"vm": scrape_metric(vm_port, r"^vm_promscrape_scraped_samples_sum"),
                  "vigil": scrape_metric(vigil_port, r"^vigil_scrape_samples_total")}
            time.sleep(args.duration)
            c1 = {"vm": cpu_seconds(vm.pid), "vigil": cpu_seconds(vg.pid)}
            s1 = {"vm": scrape_metric(vm_port, r"^vm_promscrape_scraped_samples_sum"),
                  "vigil": scrape_metric(vigil_port, r"^vigil_scrape_samples_total")}
            rss = {"vm": peak_rss_bytes(vm.pid), "vigil": peak_rss_bytes(vg.pid)}
        finally:
            stop(vg)
            stop(vm)
            # in parallel: each shutdown waits up to serve_forever's 0.5 s poll
            stoppers = [threading.Thread(target=s.shutdown) for s in servers + sinks]
            for t in stoppers:
                t.start()
            for t in stoppers:
                t.join()
    res = {}
    for k in ("vigil", "vm"):
        samples = s1[k] - s0[k]
        cpu = c1[k] - c0[k]
        res[k] = (cpu / (samples / 1e6) if samples else float("inf"), rss[k] / 2**20, samples, cpu)
    print("agent_vs_vmagent: %d targets x %d samples, interval %ds, %ds, %s"
          % (args.targets, body.count(b"\n") - body.count(b"\n#"), args.interval, args.duration, machine()))
    print("%-12s %14s %12s %12s %10s" % ("", "CPU-s/Msample", "peak RSS MiB", "samples", "CPU-s"))
    names = {"vigil": "vigil-agent", "vm": "vmagent"}
    for k in ("vigil", "vm"):
        print("%-12s %14.3f %12.1f %12.0f %10.2f" % ((names[k],) + res[k]))
    print("sink bytes: vigil %d in %d requests, vmagent %d in %d requests"
          % (counts["vigil"]["bytes"], counts["vigil"]["requests"], counts["vm"]["bytes"], counts["vm"]["requests"]))
    print("ratio vigil/vmagent: CPU per sample %.2f, peak RSS %.2f"
          % (res["vigil"][0] / res["vm"][0], res["vigil"][1] / res["vm"][1]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
