#!/usr/bin/env python3
"""GET /api/v1/metadata against a real Prometheus on the same targets.

  test_metadata.py agent          a real `prometheus` (system package) and
                                  vigil-agent -> vigil-collector scrape the
                                  same two targets: the 237-family text
                                  fixture and a small OpenMetrics one with
                                  # UNIT lines
  test_metadata.py kafka          the same through a real Kafka broker:
                                  agent -> topic -> collector consumer group
  test_metadata.py remote_write   the same Prometheus remote-writes to the
                                  collector (metadata_config on, as by
                                  default); then the collector is restarted
                                  with Prometheus stopped and must still
                                  answer from <data_dir>/metadata
  test_metadata.py forward        Prometheus remote-writes to collector A,
                                  whose remote_write (metadata_config on)
                                  sends to collector B: B must answer the same

Either way the collector's /api/v1/metadata must equal Prometheus's, name by
name, as sets of {type, help, unit} (Prometheus lists them in Go map order),
and the parameters must behave the same on both: metric=, limit=0, limit=N
(number of names), limit_per_metric=1, and the same 400 for a bad limit.
"""
import json
import os
import shutil
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, SHARED, FixtureServer, Procs, free_port, http_get,  # noqa: E402
                     kafka_bootstrap, wait_until)

TEXT_FIXTURE = os.path.join(SHARED, "testdata", "exposition", "alltypes.237mfs.prom.txt")
OM_BODY = """# TYPE job_duration_seconds histogram
# UNIT job_duration_seconds seconds
# HELP job_duration_seconds How long a job took, \\"quoted\\" and \\\\ escaped.
job_duration_seconds_bucket{le="1.0"} 3
job_duration_seconds_bucket{le="+Inf"} 4
job_duration_seconds_count 4
job_duration_seconds_sum 2.5
# TYPE queue_bytes gauge
# UNIT queue_bytes bytes
# HELP queue_bytes Bytes waiting.
queue_bytes 1024
# TYPE build info
# HELP build Build facts.
build_info{version="1"} 1
# TYPE jobs counter
# HELP jobs Jobs run.
jobs_total 7
jobs_created 1700000000
# EOF
"""
OM_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def raw_get(base, path, headers=None, **params):
    url = "%s%s?%s" % (base, path, urllib.parse.urlencode(params))
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def metadata(base, **params):
    status, doc = raw_get(base, "/api/v1/metadata", **params)
    assert status == 200 and doc["status"] == "success", (status, doc)
    return doc["data"]


def as_sets(data):
    """{name: frozenset of (type, help, unit)}: order-free, as Go maps are."""
    return {name: frozenset((e["type"], e["help"], e["unit"]) for e in entries)
            for name, entries in data.items()}


def diff(want, got):
    lines = []
    for name in sorted(set(want) | set(got)):
        if want.get(name) != got.get(name):
            lines.append("%s: prometheus %s, vigil %s" % (name, sorted(want.get(name, ())),
                                                        sorted(got.get(name, ()))))
    return lines


def scrape_configs(text_port, om_port):
    return ("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: text\n"
            "    static_configs: [{targets: ['127.0.0.1:%d']}]\n"
            "  - job_name: om\n"
            "    static_configs: [{targets: ['127.0.0.1:%d']}]\n" % (text_port, om_port))


def start_prometheus(p, text_port, om_port, write_url=None):
    port = free_port()
    cfg = os.path.join(p.dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(scrape_configs(text_port, om_port))
        if write_url:
            f.write("remote_write:\n"
                    "  - url: %s\n"
                    "    queue_config: {batch_send_deadline: 1s}\n"
                    "    metadata_config: {send_interval: 2s}\n" % write_url)
    p.start("prometheus", ["prometheus", "--config.file=" + cfg,
                           "--storage.tsdb.path=" + os.path.join(p.dir, "prom"),
                           "--web.listen-address=127.0.0.1:%d" % port])
    return "http://127.0.0.1:%d" % port


def start_collector(p, data_dir, name="collector", port=None, kafka=None, extra=""):
    port = port or free_port()
    argv = [os.path.join(BUILD, "vigil-collector"), "--listen", "127.0.0.1:%d" % port,
            "--data-dir", data_dir]
    if kafka or extra:
        cfg = os.path.join(p.dir, name + ".yml")
        with open(cfg, "w") as f:
            if kafka:
                f.write("input:\n  kafka: {brokers: '%s', group_id: %s, metrics_topic: %s, "
                        "audit_topic: %s}\n" % kafka)
            f.write(extra)
        argv += ["--config", cfg]
    p.start(name, argv)
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)
    return base, port


def start_agent(p, text_port, om_port, collector_base, kafka=None):
    cfg = os.path.join(p.dir, "agent.yml")
    with open(cfg, "w") as f:
        f.write("agent: {listen: '127.0.0.1:%d', node: it-node, tenant: default, "
                "data_dir: '%s/agent'}\n" % (free_port(), p.dir))
        f.write(scrape_configs(text_port, om_port))
        f.write("output:\n  http: {url: '%s'}\n" % collector_base)
        if kafka:
            f.write("  kafka: {brokers: '%s', metrics_topic: %s, audit_topic: %s}\n"
                    % (kafka[0], kafka[2], kafka[3]))
    p.start("agent", [os.path.join(BUILD, "vigil-agent"), "--config", cfg])


def prometheus_metadata(prom):
    """Prometheus's answer once both targets were scraped (it lists what its
    active targets hold)."""
    def ready():
        d = metadata(prom)
        return d if "job_duration_seconds" in d and len(d) > 200 else None
    return wait_until("prometheus metadata of both targets", ready, timeout=120)


def wait_equal(p, prom, base, what):
    want = as_sets(prometheus_metadata(prom))
    last = []

    def same():
        p.check_alive()
        got = as_sets(metadata(base))
        last[:] = diff(want, got)
        return not last

    try:
        wait_until("vigil metadata equal to prometheus's (%s)" % what, same, timeout=120)
    except AssertionError:
        print("differences (%d):\n  %s" % (len(last), "\n  ".join(last[:20])))
        raise
    print("%s: %d metric names, metadata equal to prometheus's" % (what, len(want)))
    return want


def check_params(prom, base, want):
    """The parameters give the same answers on both sides."""
    for name in ("job_duration_seconds", "queue_bytes", "go_goroutines", "jobs", "no_such"):
        a, b = as_sets(metadata(prom, metric=name)), as_sets(metadata(base, metric=name))
        assert a == b, "metric=%s: prometheus %r, vigil %r" % (name, a, b)
    assert metadata(prom, limit=0) == {} and metadata(base, limit=0) == {}
    for n in (1, 5):
        got = metadata(base, limit=n)
        assert len(got) == n and len(metadata(prom, limit=n)) == n, n
        assert all(as_sets({k: v})[k] == want[k] for k, v in got.items())
    per = metadata(base, limit_per_metric=1)
    assert set(per) == set(want) and all(len(v) == 1 for v in per.values())
    # limit_per_metric came after Prometheus 2.42 (the system package), which
    # ignores it: its error is checked on Vigil's side only.
    for bad, msg, sides in (("limit", "limit must be a number", (prom, base)),
                            ("limit_per_metric", "limit_per_metric must be a number", (base,))):
        for side in sides:
            status, doc = raw_get(side, "/api/v1/metadata", **{bad: "x"})
            assert status == 400 and doc["errorType"] == "bad_data" and doc["error"] == msg, \
                (side, status, doc)
    # Tenants are kept apart.
    status, doc = raw_get(base, "/api/v1/metadata", headers={"X-Scope-OrgID": "other"})
    assert status == 200 and doc["data"] == {}, doc


def run_agent(p, text_port, om_port, kafka=None):
    base, _ = start_collector(p, os.path.join(p.dir, "c"), kafka=kafka)
    prom = start_prometheus(p, text_port, om_port)
    start_agent(p, text_port, om_port, base, kafka=kafka)
    want = wait_equal(p, prom, base, "agent via kafka" if kafka else "agent")
    check_params(prom, base, want)


def run_remote_write(p, text_port, om_port):
    data_dir = os.path.join(p.dir, "c")
    base, port = start_collector(p, data_dir)
    prom = start_prometheus(p, text_port, om_port, base + "/api/v1/write")
    want = wait_equal(p, prom, base, "remote_write")
    check_params(prom, base, want)
    # Restart the collector with nothing sending: the file must answer.
    # Prometheus first: it flushes its queue to the collector on the way out.
    for want_name in ("prometheus", "collector"):
        for name, proc, log in p.procs:
            if name == want_name:
                proc.terminate()
                proc.wait(timeout=90)
    assert os.path.getsize(os.path.join(data_dir, "metadata")) > 0
    base2, _ = start_collector(p, data_dir, name="collector2")
    got = as_sets(metadata(base2))
    lines = diff(want, got)
    assert not lines, "after a restart:\n  " + "\n  ".join(lines[:20])
    print("remote_write: %d metric names kept across a collector restart" % len(got))


def run_forward(p, text_port, om_port):
    b, _ = start_collector(p, os.path.join(p.dir, "b"), name="collector_b")
    a, _ = start_collector(p, os.path.join(p.dir, "a"), name="collector_a",
                           extra="remote_write:\n  - url: %s/api/v1/write\n"
                                 "    queue_config: {batch_send_deadline: 1s}\n"
                                 "    metadata_config: {send_interval: 2s}\n" % b)
    prom = start_prometheus(p, text_port, om_port, a + "/api/v1/write")
    wait_equal(p, prom, a, "forward: collector A")
    want = wait_equal(p, prom, b, "forward: collector B (A's remote_write)")
    check_params(prom, b, want)
    sent = 0
    with urllib.request.urlopen(a + "/metrics", timeout=10) as r:
        for line in r.read().decode().splitlines():
            if line.startswith("vigil_remote_write_metadata_failed_total"):
                assert float(line.rsplit(" ", 1)[1]) == 0, line
            if line.startswith("vigil_remote_write_metadata_total"):
                sent += float(line.rsplit(" ", 1)[1])
    assert sent >= len(want), "A counted %d metadata entries sent" % sent


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "agent"
    assert mode in ("agent", "kafka", "remote_write", "forward"), mode
    assert shutil.which("prometheus"), "prometheus (system package) is required"
    with Procs() as p:
        om_path = os.path.join(p.dir, "om.txt")
        with open(om_path, "w") as f:
            f.write(OM_BODY)
        with FixtureServer(TEXT_FIXTURE) as text, FixtureServer(om_path, OM_TYPE) as om:
            if mode == "agent":
                run_agent(p, text.port, om.port)
            elif mode == "kafka":
                run = uuid.uuid4().hex[:8]
                run_agent(p, text.port, om.port, kafka=(kafka_bootstrap(), "it-md-" + run,
                                                       "vigil.metrics.it-md-" + run,
                                                       "vigil.audit.it-md-" + run))
            elif mode == "forward":
                run_forward(p, text.port, om.port)
            else:
                run_remote_write(p, text.port, om.port)
    print("test_metadata %s: OK" % mode)
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
