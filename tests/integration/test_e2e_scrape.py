#!/usr/bin/env python3
"""End to end: an agent scrapes a real 237-family exposition and ships it to a
collector, over HTTP (the embedded default) or through a real Kafka broker.

  test_e2e_scrape.py http    agent --HTTP--> collector
  test_e2e_scrape.py kafka   agent --Kafka--> collector (consumer group)

The test passes only when every sample of the fixture file comes back from
the collector's /api/v1/series with its exact labels plus job and instance,
/api/v1/query returns the file's values for them, and up{job=...} is 1.
"""
import math
import os
import sys
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, SHARED, FixtureServer, Procs, api, free_port,  # noqa: E402
                     kafka_bootstrap, parse_exposition, wait_until)

FIXTURE = os.path.join(SHARED, "testdata", "exposition", "alltypes.237mfs.prom.txt")


def write_configs(d, mode, fixture_port, cport, aport):
    run = uuid.uuid4().hex[:8]
    mt, at = "vigil.metrics.it-%s" % run, "vigil.audit.it-%s" % run
    kafka = ""
    col_kafka = ""
    if mode == "kafka":
        b = kafka_bootstrap()
        kafka = "  kafka: {brokers: '%s', metrics_topic: %s, audit_topic: %s}\n" % (b, mt, at)
        col_kafka = ("input:\n  kafka: {brokers: '%s', group_id: it-%s, metrics_topic: %s, "
                     "audit_topic: %s}\n" % (b, run, mt, at))
    agent = ("agent: {listen: '127.0.0.1:%d', node: it-node, tenant: default, data_dir: '%s/agent'}\n"
             "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
             "scrape_configs:\n"
             "  - job_name: fixture\n"
             "    static_configs: [{targets: ['127.0.0.1:%d'], labels: {env: it}}]\n"
             "output:\n  http: {url: 'http://127.0.0.1:%d'}\n%s"
             % (aport, d, fixture_port, cport, kafka))
    collector = ("collector: {listen: '127.0.0.1:%d', data_dir: '%s/collector'}\n%s"
                 % (cport, d, col_kafka))
    paths = {}
    for name, text in (("agent", agent), ("collector", collector)):
        paths[name] = os.path.join(d, name + ".yml")
        with open(paths[name], "w") as f:
            f.write(text)
    return paths


def expected_series(fixture_port):
    with open(FIXTURE) as f:
        samples = parse_exposition(f.read())
    exp = {}
    for labels, value in samples:
        labels = dict(labels, job="fixture", instance="127.0.0.1:%d" % fixture_port, env="it")
        exp[tuple(sorted(labels.items()))] = value
    return exp


def same_value(got, want):
    g, w = float(got), float(want)
    if math.isnan(w):
        return math.isnan(g)
    return g == w or abs(g - w) <= 1e-12 * max(abs(g), abs(w))


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "http"
    with Procs() as procs, FixtureServer(FIXTURE) as fx:
        cport, aport = free_port(), free_port()
        cfg = write_configs(procs.dir, mode, fx.port, cport, aport)
        base = "http://127.0.0.1:%d" % cport
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg["collector"]])
        procs.start("agent", [os.path.join(BUILD, "vigil-agent"), "--config", cfg["agent"]])
        exp = expected_series(fx.port)

        def all_series_present():
            procs.check_alive()
            data = api(base, "/api/v1/series", **{"match[]": '{job="fixture"}'})
            got = {tuple(sorted(s.items())) for s in data}
            missing = [k for k in exp if k not in got]
            return not missing and got

        got = wait_until("all %d fixture series in /api/v1/series (%s)" % (len(exp), mode),
                         all_series_present, timeout=120)
        print("series: %d expected from the file, %d returned (with synthetic ones)" % (len(exp), len(got)))

        res = api(base, "/api/v1/query", query='{job="fixture"}')
        assert res["resultType"] == "vector", res["resultType"]
        values = {tuple(sorted(r["metric"].items())): r["value"][1] for r in res["result"]}
        wrong = [(k, values.get(k), v) for k, v in exp.items() if k not in values or not same_value(values[k], v)]
        assert not wrong, "values differ for %d series, e.g. %r" % (len(wrong), wrong[:3])

        def up_is_one():
            r = api(base, "/api/v1/query", query='up{job="fixture"}')["result"]
            return len(r) == 1 and r[0]["value"][1] == "1"

        wait_until("up{job=\"fixture\"} == 1", up_is_one, timeout=30)
        procs.check_alive()
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
