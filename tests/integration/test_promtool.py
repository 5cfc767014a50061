#!/usr/bin/env python3
"""Real Prometheus clients against the collector's Prometheus HTTP API.

  test_promtool.py promtool      `promtool query instant|range|series|labels`
                                 answer with the values the generated data
                                 implies; Grafana's health check (1+1 at
                                 time=4) answers 2.
  test_promtool.py remote_read   a real `prometheus` with `remote_read`
                                 pointing at the collector answers a query
                                 for Vigil's data through its own
                                 /api/v1/query.

Known data goes in through `vigilctl backfill` (an OpenMetrics file with
timestamps, posted as ordinary batches). The data ends a minute before the
test starts, so promtool's default windows (the last 5 minutes) see it.
"""
import json
import math
import os
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, api, free_port, http_get, wait_until  # noqa: E402

STEP = 15          # seconds between samples
SPAN = 30 * 60     # seconds of data
SERIES = [("j0", "i0", 1.0), ("j0", "i1", 2.0), ("j1", "i2", 3.0)]  # job, instance, rate/s


def write_data(d, end):
    """OpenMetrics counters demo_total rising at a fixed rate, and a gauge."""
    start = end - SPAN
    lines = ["# TYPE demo counter", "# TYPE demo_temp gauge"]
    for t in range(start, end + 1, STEP):
        for job, inst, rate in SERIES:
            lines.append('demo_total{job="%s",instance="%s"} %g %d' % (job, inst, rate * (t - start), t))
    for t in range(start, end + 1, STEP):
        lines.append('demo_temp{room="a"} %g %d' % (20 + (t - start) / 60.0, t))
    lines.append("# EOF")
    path = os.path.join(d, "data.om")
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")
    return path, start


def start_collector(p):
    port = free_port()
    p.start("collector", [os.path.join(BUILD, "vigil-collector"), "--listen", "127.0.0.1:%d" % port,
                          "--data-dir", os.path.join(p.dir, "c")])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)
    return base


def backfill(base, path):
    env = dict(os.environ, VIGIL_URL=base)
    out = subprocess.run([os.path.join(BUILD, "vigilctl"), "backfill", path], env=env,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=120)
    assert out.returncode == 0, out.stdout
    print(out.stdout.strip())


def promtool(*args):
    out = subprocess.run(["promtool", "query"] + list(args), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, timeout=60)
    assert out.returncode == 0, "promtool %s failed: %s" % (args, out.stderr)
    return out.stdout


def close(a, b):
    return a == b or abs(a - b) <= 1e-6 * max(abs(a), abs(b))


def check_promtool(base, start, end):
    t = end - 60
    # instant: sum by (job) of rates. promtool prints `{job="j0"} => 3 @[T]`.
    out = promtool("instant", base, "sum by (job) (rate(demo_total[5m]))", "--time=%d" % t)
    got = {}
    for line in out.strip().splitlines():
        labels, rest = line.split(" => ")
        got[labels] = float(rest.split(" @")[0])
    assert set(got) == {'{job="j0"}', '{job="j1"}'}, out
    assert close(got['{job="j0"}'], 3.0) and close(got['{job="j1"}'], 3.0), out
    # range: the counter of i1 every 5 minutes.
    out = promtool("range", base, 'demo_total{instance="i1"}', "--start=%d" % start,
                   "--end=%d" % (start + 600), "--step=5m")
    values = [float(l.split(" @")[0]) for l in out.splitlines() if "@[" in l]
    assert values == [0.0, 600.0, 1200.0], out
    # series and labels, with promtool's default window (the last 5 minutes
    # before now) and with an explicit one.
    out = promtool("series", base, "--match=demo_total", "--start=%d" % start, "--end=%d" % end)
    assert sorted(out.strip().splitlines()) == [
        '{__name__="demo_total", instance="i0", job="j0"}',
        '{__name__="demo_total", instance="i1", job="j0"}',
        '{__name__="demo_total", instance="i2", job="j1"}'], out
    out = promtool("labels", base, "job", "--start=%d" % start, "--end=%d" % end)
    assert out.split() == ["j0", "j1"], out
    out = promtool("labels", base, "room")
    assert out.split() == ["a"], out
    # Grafana's data-source health check, and a few endpoints it calls.
    assert api(base, "/api/v1/query", query="1+1", time="4") == {"resultType": "scalar",
                                                                 "result": [4, "2"]}
    assert api(base, "/api/v1/status/buildinfo")["features"] == {}
    assert api(base, "/api/v1/query_exemplars", query="demo_total",
               start=str(start * 1000), end=str(end * 1000)) == []
    assert api(base, "/api/v1/format_query", query="sum(demo_total)by(job)") == \
        "sum by (job) (demo_total)"
    m = api(base, "/api/v1/query_range", query="avg(demo_temp)", start=str(start),
            end=str(start + 120), step="60")
    assert [v for _, v in m["result"][0]["values"]] == ["20", "21", "22"], m


def check_remote_read(p, base, start, end):
    port = free_port()
    cfg = os.path.join(p.dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1h, evaluation_interval: 1h}\n"
                "remote_read:\n  - url: %s/api/v1/read\n    read_recent: true\n" % base)
    p.start("prometheus", ["prometheus", "--config.file=" + cfg,
                           "--storage.tsdb.path=" + os.path.join(p.dir, "prom"),
                           "--web.listen-address=127.0.0.1:%d" % port])
    prom = "http://127.0.0.1:%d" % port
    wait_until("prometheus ready", lambda: http_get(prom + "/-/ready")[0] == 200)
    t = end - 60
    res = api(prom, "/api/v1/query", query='demo_total{instance="i2"}', time=str(t))
    assert len(res["result"]) == 1, res
    assert res["result"][0]["metric"] == {"__name__": "demo_total", "instance": "i2", "job": "j1"}
    assert close(float(res["result"][0]["value"][1]), 3.0 * (t - start)), res
    res = api(prom, "/api/v1/query", query="sum(rate(demo_total[5m]))", time=str(t))
    assert close(float(res["result"][0]["value"][1]), 6.0), res
    res = api(prom, "/api/v1/query_range", query="demo_temp", start=str(start),
              end=str(start + 120), step="60")
    assert [v for _, v in res["result"][0]["values"]] == ["20", "21", "22"], res


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "promtool"
    with Procs() as p:
        base = start_collector(p)
        end = int(time.time()) - 60
        path, start = write_data(p.dir, end)
        backfill(base, path)
        if mode == "promtool":
            check_promtool(base, start, end)
        else:
            check_remote_read(p, base, start, end)
        p.check_alive()
    print("test_promtool %s: OK" % mode)


if __name__ == "__main__":
    main()
