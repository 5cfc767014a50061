#!/usr/bin/env python3
"""rwsend/run.py - throughput of the collector's remote_write sender.

A collector with one remote_write entry pointing at a real VictoriaMetrics
gets SERIES x SAMPLES samples through its own remote-write receiver (bodies
built before the clock starts); the clock stops when the sender's
vigil_remote_write_samples_total reaches the total. Prints samples/s end to
end (ingest + WAL + read back + encode + send), the collector's CPU seconds
per million samples (ingest included) and VictoriaMetrics' for comparison.
Run under flock /tmp/vigil-bench.lock.
"""
import os
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(
    os.path.abspath(__file__)))), "tests", "integration"))
from common import BUILD, cpu_seconds, free_port, start, stop, wait_port  # noqa: E402
import wire  # noqa: E402

SERIES = int(os.environ.get("SERIES", "2000"))
SAMPLES = int(os.environ.get("SAMPLES", "250"))
PER_REQ = 10  # samples per series per request


def bodies(t0):
    out = []
    for k in range(0, SAMPLES, PER_REQ):
        series = [({"__name__": "bench_rw", "i": str(i), "job": "b"},
                   [(t0 + (k + j) * 1000, float(k + j)) for j in range(PER_REQ)])
                  for i in range(SERIES)]
        out.append(wire.snappy_literal(wire.write_request(series)))
    return out


def sent(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("vigil_remote_write_samples_total{"):
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def main():
    total = SERIES * SAMPLES
    with tempfile.TemporaryDirectory(prefix="vigil-bench-rwsend-") as d:
        vm_port, port = free_port(), free_port()
        vm = start(["victoria-metrics", "-httpListenAddr=127.0.0.1:%d" % vm_port,
                    "-storageDataPath=" + os.path.join(d, "vm"), "-retentionPeriod=100y"],
                   os.path.join(d, "vm.log"))
        wait_port(vm_port)
        cfg = os.path.join(d, "c.yml")
        with open(cfg, "w") as f:
            f.write("remote_write: [{url: 'http://127.0.0.1:%d/api/v1/write', name: vm}]\n"
                    "limits: {default: {ingestion_rate: 1e9, ingestion_burst: 1e9}}\n" % vm_port)
        col = start([os.path.join(BUILD, "vigil-collector"), "--config", cfg, "--listen",
                     "127.0.0.1:%d" % port, "--data-dir", os.path.join(d, "c")],
                    os.path.join(d, "c.log"))
        try:
            run(port, vm, col, total)
        finally:
            stop(col)
            stop(vm)


def run(port, vm, col, total):
    if True:
        wait_port(port)
        base = "http://127.0.0.1:%d" % port
        reqs = bodies((int(time.time()) - 3600) * 1000)
        c0, v0, t = cpu_seconds(col.pid), cpu_seconds(vm.pid), time.monotonic()
        for b in reqs:
            rq = urllib.request.Request(base + "/api/v1/write", data=b, method="POST", headers={
                "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy"})
            urllib.request.urlopen(rq, timeout=60).read()
        ingested = time.monotonic() - t
        while sent(base) < total:
            if time.monotonic() - t > 600:
                raise SystemExit("sender did not finish in 600 s: %d of %d" % (sent(base), total))
            time.sleep(0.05)
        el = time.monotonic() - t
        cc, vc = cpu_seconds(col.pid) - c0, cpu_seconds(vm.pid) - v0
        print("rwsend: %d series x %d samples = %d; ingest %.2f s; all sent after %.2f s "
              "(%.0f samples/s end to end)" % (SERIES, SAMPLES, total, ingested, el, total / el))
        print("rwsend: collector CPU %.2f s/M samples (ingest + send), VictoriaMetrics %.2f s/M"
              % (cc * 1e6 / total, vc * 1e6 / total))


if __name__ == "__main__":
    main()
