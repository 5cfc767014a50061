#!/usr/bin/env python3
"""Differential test: the same PromQL through Vigil and through a real
Prometheus, over the same data, must give the same answers.

Data: a generated OpenMetrics file (counters with resets, gauges, classic
histogram buckets, series with gaps, an info-style series) over 2 hours.
Prometheus gets it through `promtool tsdb create-blocks-from openmetrics`
into its data directory before it starts; Vigil through `vigilctl backfill`
(ordinary batches on POST /ingest/v1/batch).

Queries: every aggregation, the common functions, binary operators with
vector matching, offsets, `@`, subqueries -- each run as an instant query
at three times and as a range query, through both HTTP APIs. Results must
be equal: same result type, same label sets, same timestamps, values within
1e-6 relative (NaN equals NaN); vector order only matters for sort*.

The peer is the system package, Prometheus 2.42, which predates Prometheus
3's semantics. Samples sit 3 s past each 15 s slot and evaluation times 7 s
past the minute, so no sample ever falls exactly on a range boundary: there
left-open (3.x) and closed (2.x) range selectors agree. Whatever still
differs because of the version is listed in KNOWN with the reason; those
queries run against Vigil alone (it must answer successfully) and are
reported, never silently dropped. Any other difference fails the test.
"""
import json
import math
import os
import random
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, http_get, wait_until  # noqa: E402

STEP = 15
SPAN = 2 * 3600
JOBS = ["api", "web"]
INSTANCES = ["a", "b", "c"]
LES = ["0.1", "0.5", "1", "5", "+Inf"]

# Differences that come from Prometheus 2.42 predating Prometheus 3. Each
# entry: query -> reason. These run against Vigil only.
KNOWN = {
    "sort_by_label(node_temp, \"zone\", \"instance\")":
        "sort_by_label does not exist in 2.42 (added in 3.x, experimental there)",
    "sort_by_label_desc(node_temp, \"instance\")":
        "sort_by_label_desc does not exist in 2.42",
    "limitk(2, node_temp)": "limitk does not exist in 2.42 (Prometheus 3 aggregation)",
    "limit_ratio(0.5, node_temp)": "limit_ratio does not exist in 2.42 (Prometheus 3 aggregation)",
    "double_exponential_smoothing(node_temp[10m], 0.5, 0.5)":
        "2.42 calls this function holt_winters; Prometheus 3 renamed it",
    "node_temp atan2 3":
        "2.42 keeps __name__ on atan2 results; dropped since 2.46 (prometheus#12595)",
    'node_temp{zone="z1"} atan2 ignoring(zone) node_temp{zone="z2"}':
        "2.42 keeps __name__ on atan2 results; dropped since 2.46 (prometheus#12595)",
}


def gen_data(start):
    """OpenMetrics text (families contiguous, series in time order)."""
    rnd = random.Random(42)
    times = [start + 3 + i * STEP for i in range(SPAN // STEP + 1)]
    fam = []

    def family(name, series):
        fam.append("# TYPE %s gauge" % name)
        for labels, values in series:
            lab = ",".join('%s="%s"' % kv for kv in labels)
            for t, v in zip(times, values):
                if v is not None:
                    fam.append("%s{%s} %s %d" % (name, lab, repr(float(v)), t))

    series = []
    for job in JOBS:
        for inst in INSTANCES:
            for code in ["200", "500"]:
                for method in ["get", "post"]:
                    rate = rnd.choice([0.5, 1, 2, 5, 10]) * (0.1 if code == "500" else 1)
                    reset_at = rnd.choice([None, None, len(times) // 3, len(times) // 2])
                    v, vals = rnd.randint(0, 100), []
                    for i in range(len(times)):
                        if i == reset_at:
                            v = 0
                        v += rate * STEP * rnd.choice([0.5, 1, 1.5])
                        vals.append(round(v))
                    series.append(((("code", code), ("instance", inst), ("job", job),
                                    ("method", method)), vals))
    family("http_requests_total", series)
    series = []
    for k, inst in enumerate(INSTANCES):
        for zone in ["z1", "z2"]:
            ph = rnd.random() * 6
            series.append(((("instance", inst), ("zone", zone)),
                           [round(20 + 5 * math.sin((t - start) / 600.0 + ph) + k, 3) for t in times]))
    family("node_temp", series)
    for suffix in ["bucket", "sum", "count"]:
        series = []
        for job in JOBS:
            les = LES if suffix == "bucket" else [None]
            for le in les:
                counts, vals = [0.0] * len(LES), []
                sm = 0.0
                r2 = random.Random(job)
                for _ in times:
                    for _ in range(r2.randint(5, 20)):
                        d = r2.expovariate(2.0)
                        sm += d
                        for j, b in enumerate(LES):
                            if b == "+Inf" or d <= float(b):
                                counts[j] += 1
                    if suffix == "bucket":
                        vals.append(counts[LES.index(le)])
                    elif suffix == "sum":
                        vals.append(round(sm, 3))
                    else:
                        vals.append(counts[-1])
                labels = (("job", job),) + ((("le", le),) if le else ())
                series.append((labels, vals))
        family("request_duration_seconds_" + suffix, series)
    # A series with gaps longer than the lookback, one that stops early.
    gaps = [None if (i // 40) % 2 else 10 + i % 7 for i in range(len(times))]
    stops = [5.0 if i < len(times) // 2 else None for i in range(len(times))]
    family("intermittent", [((("instance", "a"),), gaps), ((("instance", "b"),), stops)])
    family("build_info", [((("instance", i), ("version", "1.%d" % k)), [1] * len(times))
                          for k, i in enumerate(INSTANCES)])
    return "\n".join(fam) + "\n# EOF\n"


def queries():
    """The query list: (query, instant_only)."""
    q = []
    sels = ['http_requests_total', 'http_requests_total{code="500"}',
            'http_requests_total{method=~"g.*",job!="web"}', '{__name__=~"node_.*"}',
            'node_temp{zone!="z1"}', 'http_requests_total offset 10m', 'node_temp offset -5m',
            'intermittent', 'build_info', 'request_duration_seconds_bucket{le="1"}']
    q += sels
    rate = "rate(http_requests_total[5m])"
    for agg in ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"]:
        for arg in [rate, "node_temp"]:
            q += ["%s(%s)" % (agg, arg), "%s by (job) (%s)" % (agg, arg),
                  "%s without (instance) (%s)" % (agg, arg)]
    for arg in [rate, "node_temp"]:
        q += ["topk(3, %s)" % arg, "bottomk(2, %s)" % arg, "topk by (job) (1, %s)" % arg,
              "quantile(0.9, %s)" % arg, "quantile by (job) (0.25, %s)" % arg]
    q += ['count_values("v", floor(node_temp))', 'count_values by (zone) ("v", floor(node_temp))',
          'sum by (le) (rate(request_duration_seconds_bucket[5m]))']
    for fn in ["rate", "irate", "increase", "delta", "idelta", "deriv", "changes", "resets"]:
        for r in ["1m", "5m", "20m"]:
            q.append("%s(http_requests_total[%s])" % (fn, r))
    for fn in ["avg", "min", "max", "sum", "count", "last", "present", "stddev", "stdvar"]:
        q += ["%s_over_time(node_temp[10m])" % fn, "%s_over_time(intermittent[5m])" % fn]
    q += ["quantile_over_time(0.5, node_temp[10m])", "quantile_over_time(0.9, node_temp[30m])",
          "predict_linear(node_temp[10m], 600)", "deriv(node_temp[15m])",
          "absent(nonexistent)", "absent(node_temp)", 'absent(nonexistent{job="x"})',
          "absent_over_time(nonexistent[5m])", "absent_over_time(intermittent[5m])",
          "histogram_quantile(0.9, sum by (le) (rate(request_duration_seconds_bucket[5m])))",
          "histogram_quantile(0.5, sum by (job, le) (rate(request_duration_seconds_bucket[10m])))",
          "histogram_quantile(0.99, rate(request_duration_seconds_bucket[5m]))",
          'label_replace(node_temp, "z", "$1", "zone", "z(.*)")',
          'label_replace(node_temp, "zone", "", "zone", ".*")',
          'label_join(node_temp, "iz", "-", "instance", "zone")',
          "sort(node_temp)", "sort_desc(node_temp)", "sort(sum by (job) (%s))" % rate,
          "timestamp(node_temp)", "timestamp(intermittent)", "vector(1)", "vector(time())",
          "scalar(sum(node_temp))", "scalar(node_temp)", "time()", "pi()",
          "sum(rate(request_duration_seconds_sum[5m])) / sum(rate(request_duration_seconds_count[5m]))"]
    for fn in ["abs", "ceil", "floor", "round", "sqrt", "exp", "ln", "log2", "log10", "sgn",
               "sin", "cos", "tan", "atan", "sinh", "cosh", "tanh", "asinh", "deg", "rad"]:
        q.append("%s(node_temp / 10)" % fn)
    q += ["asin(node_temp / 100)", "acos(node_temp / 100)", "atanh(node_temp / 100)",
          "acosh(node_temp)", "round(node_temp, 0.5)", "clamp(node_temp, 19, 24)",
          "clamp_min(node_temp, 22)", "clamp_max(node_temp, 22)", "-node_temp", "+node_temp"]
    for fn in ["day_of_week", "day_of_month", "day_of_year", "days_in_month", "hour", "minute",
               "month", "year"]:
        q += ["%s()" % fn, "%s(timestamp(node_temp))" % fn]
    for op in ["+", "-", "*", "/", "%", "^", "atan2"]:
        q.append("node_temp %s 3" % op)
        q.append('node_temp{zone="z1"} %s ignoring(zone) node_temp{zone="z2"}' % op)
    for op in ["==", "!=", ">", "<", ">=", "<="]:
        q += ["node_temp %s 22" % op, "node_temp %s bool 22" % op,
              'node_temp{zone="z1"} %s on(instance) node_temp{zone="z2"}' % op]
    q += ['rate(http_requests_total{code="500"}[5m]) / ignoring(code) rate(http_requests_total{code="200"}[5m])',
          "sum by (job, instance) (%s) / on(job) group_left() sum by (job) (%s)" % (rate, rate),
          "node_temp * on(instance) group_left(version) build_info",
          "build_info * on(instance) group_right(version) node_temp",
          'node_temp and node_temp{zone="z1"}', "node_temp and on(instance) intermittent",
          'node_temp or node_temp{zone="z1"} * 2', "intermittent or vector(0)",
          'node_temp unless node_temp{zone="z1"}', "node_temp unless on(instance) intermittent",
          "sum by (job) (%s) > 1" % rate, "2 * 3 + 4 ^ 2 ^ 0.5", "1 / 0", "-1 / 0", "0 / 0",
          "(node_temp > 21) * 2", "count(node_temp > 22) or vector(0)",
          "rate(http_requests_total[5m] offset 15m)", "sum(node_temp offset 1h)",
          "node_temp - node_temp offset 10m", "increase(http_requests_total[10m] offset -5m)",
          "max_over_time(%s[30m:1m])" % rate, "avg_over_time(node_temp[10m:30s])",
          "min_over_time(sum(node_temp)[20m:])", "rate(http_requests_total[5m:15s])",
          "sum_over_time(rate(http_requests_total[1m])[10m:2m] offset 5m)",
          "max_over_time(deriv(node_temp[5m])[15m:1m])", "stddev_over_time(node_temp[1h:5m])",
          "avg(avg_over_time(node_temp[5m]))", "count(count by (instance) (node_temp))",
          'sum by (zone) (node_temp) / scalar(count(count by (zone) (node_temp)))']
    q += [k for k in KNOWN if k not in q]
    return q


def fetch(base, path, params):
    url = "%s%s?%s" % (base, path, urllib.parse.urlencode(params))
    try:
        with urllib.request.urlopen(url, timeout=60) as r:
            body = r.read()
    except urllib.error.HTTPError as e:
        body = e.read()
    try:
        return json.loads(body.decode("utf-8"))
    except ValueError as e:  # reported as a difference, not a crash
        return {"status": "invalid", "error": "not JSON (%s): %r" % (e, body[:200])}


def fval(s):
    return float(s)


def same_value(a, b):
    x, y = fval(a), fval(b)
    if math.isnan(x) and math.isnan(y):
        return True
    if x == y:
        return True
    return abs(x - y) <= 1e-6 * max(abs(x), abs(y))


def key(m):
    return tuple(sorted(m.items()))


def compare(v, p, ordered):
    """None when equal, else a short description of the difference."""
    if v.get("status") != p.get("status"):
        return "status %s (vigil: %s) vs %s (prometheus: %s)" % (
            v.get("status"), v.get("error"), p.get("status"), p.get("error"))
    if v["status"] != "success":
        return None  # both failed: good enough (messages may be worded differently)
    dv, dp = v["data"], p["data"]
    if dv["resultType"] != dp["resultType"]:
        return "result type %s vs %s" % (dv["resultType"], dp["resultType"])
    rv, rp = dv["result"], dp["result"]
    if dv["resultType"] in ("scalar", "string"):
        ok = rv[0] == rp[0] and (same_value(rv[1], rp[1]) if dv["resultType"] == "scalar"
                                 else rv[1] == rp[1])
        return None if ok else "%r vs %r" % (rv, rp)
    if ordered and [key(s["metric"]) for s in rv] != [key(s["metric"]) for s in rp]:
        return "order differs"
    mv = {key(s["metric"]): s for s in rv}
    mp = {key(s["metric"]): s for s in rp}
    if set(mv) != set(mp):
        return "series only in vigil: %s; only in prometheus: %s" % (
            sorted(set(mv) - set(mp))[:3], sorted(set(mp) - set(mv))[:3])
    for k in mv:
        pv = mv[k].get("values") or [mv[k]["value"]]
        pp = mp[k].get("values") or [mp[k]["value"]]
        if len(pv) != len(pp):
            return "%s: %d points vs %d" % (dict(k), len(pv), len(pp))
        for a, b in zip(pv, pp):
            if a[0] != b[0] or not same_value(a[1], b[1]):
                return "%s: %r vs %r" % (dict(k), a, b)
    return None


def start_prometheus(p, om):
    d = os.path.join(p.dir, "prom")
    os.makedirs(d)
    out = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", om, d],
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    cfg = os.path.join(p.dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write("global: {scrape_interval: 1h, evaluation_interval: 1m}\n")
    port = free_port()
    p.start("prometheus", ["prometheus", "--config.file=" + cfg, "--storage.tsdb.path=" + d,
                           "--storage.tsdb.retention.time=30d",
                           "--web.listen-address=127.0.0.1:%d" % port])
    base = "http://127.0.0.1:%d" % port
    wait_until("prometheus ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def start_vigil(p, om):
    port = free_port()
    p.start("collector", [os.path.join(BUILD, "vigil-collector"), "--listen",
                          "127.0.0.1:%d" % port, "--data-dir", os.path.join(p.dir, "c")])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)
    out = subprocess.run([os.path.join(BUILD, "vigilctl"), "backfill", om],
                         env=dict(os.environ, VIGIL_URL=base), stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, timeout=300)
    assert out.returncode == 0, out.stdout
    return base


def main():
    start = (int(time.time()) // 3600 - 4) * 3600
    qs = queries()
    assert len(qs) >= 200, len(qs)
    times = [start + 3600 + 7, start + 5400 + 67, start + 7000 + 7]
    rng = {"start": start + 2400 + 7, "end": start + 6000 + 7, "step": "60"}
    with Procs() as p:
        om = os.path.join(p.dir, "data.om")
        with open(om, "w") as f:
            f.write(gen_data(start))
        prom = start_prometheus(p, om)
        vig = start_vigil(p, om)
        wait_until("both stores answer",
                   lambda: fetch(vig, "/api/v1/query", {"query": "count(node_temp)", "time": times[0]})
                   ["data"]["result"] and fetch(prom, "/api/v1/query", {"query": "count(node_temp)",
                                                                        "time": times[0]})["data"]["result"])
        equal, diffs, known = 0, [], []
        for q in qs:
            runs = [("/api/v1/query", {"query": q, "time": t}) for t in times]
            runs.append(("/api/v1/query_range", dict(rng, query=q)))
            if q in KNOWN:
                for path, params in runs:
                    r = fetch(vig, path, params)
                    assert r.get("status") == "success", "vigil failed %s: %r" % (q, r)
                known.append((q, KNOWN[q]))
                continue
            for path, params in runs:
                d = compare(fetch(vig, path, params), fetch(prom, path, params),
                            q.startswith("sort") and path.endswith("query"))
                if d:
                    diffs.append((q, path.rsplit("/", 1)[1], params.get("time"), d))
                else:
                    equal += 1
        p.check_alive()
    print("queries: %d (%d comparisons equal)" % (len(qs), equal))
    for q, why in known:
        print("KNOWN (2.42 vs 3.x): %s  -- %s" % (q, why))
    for q, kind, t, d in diffs:
        print("DIFF %s @%s %s: %s" % (kind, t, q, d))
    if diffs:
        print("%d unexpected differences" % len(diffs))
        sys.exit(1)
    print("test_promql_vs_prometheus: OK")


if __name__ == "__main__":
    main()
