#!/usr/bin/env python3
"""Real remote-write senders into the collector's POST /api/v1/write.

  test_remote_write.py prometheus   a real `prometheus` (system package)
                                    scrapes the 237-family fixture and
                                    remote-writes to the collector
  test_remote_write.py vmagent      the same with a real `vmagent
                                    -promscrape.config=... -remoteWrite.url=...`

Either way every fixture series must arrive (checked through the collector's
/api/v1/series, values through /api/v1/query), the sender's own metrics must
show nothing failed, retried or dropped, its log must hold no send error, and
the collector must have refused nothing. A real sender is the compliance test
that matters: it checks our headers, status codes and snappy framing the way
the sender reads them.
"""
import os
import re
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import FixtureServer, Procs, api, free_port, wait_until  # noqa: E402
# The same fixture, expected series (job="fixture", env="it") and value
# comparison as the agent's end-to-end test, and the same collector start.
from test_e2e_scrape import FIXTURE, expected_series, same_value  # noqa: E402
from test_promtool import start_collector  # noqa: E402


def scrape_config(fixture_port):
    return ("global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: fixture\n"
            "    static_configs: [{targets: ['127.0.0.1:%d'], labels: {env: it}}]\n" % fixture_port)


def metric_values(url):
    """{name{labels}: value} from a /metrics page (sums nothing, keeps every line)."""
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, val = line.rpartition(" ")
            out[key] = float(val)
    return out


def total(values, name):
    """Sum of every series of metric name (any labels)."""
    return sum(v for k, v in values.items() if k == name or k.startswith(name + "{"))


def start_prometheus(p, fixture_port, write_url):
    port = free_port()
    cfg = os.path.join(p.dir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(scrape_config(fixture_port) +
                "remote_write:\n"
                "  - url: %s\n"
                "    queue_config: {batch_send_deadline: 1s, max_samples_per_send: 500}\n"
                "    metadata_config: {send_interval: 2s}\n" % write_url)
    p.start("prometheus", ["prometheus", "--config.file=" + cfg,
                           "--storage.tsdb.path=" + os.path.join(p.dir, "prom"),
                           "--web.listen-address=127.0.0.1:%d" % port])
    return "http://127.0.0.1:%d" % port


def start_vmagent(p, fixture_port, write_url):
    port = free_port()
    cfg = os.path.join(p.dir, "scrape.yml")
    with open(cfg, "w") as f:
        f.write(scrape_config(fixture_port))
    p.start("vmagent", ["vmagent", "-promscrape.config=" + cfg, "-remoteWrite.url=" + write_url,
                        "-remoteWrite.tmpDataPath=" + os.path.join(p.dir, "vmagent"),
                        "-remoteWrite.flushInterval=1s", "-httpListenAddr=127.0.0.1:%d" % port])
    # vmagent's default of one queue per CPU can deliver two scrapes of a series
    # out of order: the head's out-of-order window must take them without a retry.
    return "http://127.0.0.1:%d" % port


# What "nothing failed" means for each sender: metrics that must be 0, metrics
# that must have grown (proof that the sender did send), and log patterns of a
# failed or retried send.
SENDERS = {
    "prometheus": {
        "zero": ["prometheus_remote_storage_samples_failed_total",
                 "prometheus_remote_storage_samples_retried_total",
                 "prometheus_remote_storage_samples_dropped_total",
                 "prometheus_remote_storage_metadata_failed_total",
                 "prometheus_remote_storage_metadata_retried_total"],
        "positive": ["prometheus_remote_storage_samples_total"],
        "log": re.compile(r"(?i)failed to send|non-recoverable|retry|error sending"),
    },
    "vmagent": {
        "zero": ["vmagent_remotewrite_retries_count_total",
                 "vmagent_remotewrite_packets_dropped_total"],
        "positive": ["vmagent_remotewrite_block_size_rows_count"],
        "log": re.compile(r"(?i)cannot send|unexpected status code|retrying"),
    },
}


def check_sender_clean(p, mode, sender_url):
    spec = SENDERS[mode]
    vals = wait_until("%s /metrics" % mode, lambda: metric_values(sender_url + "/metrics"))
    for name in spec["positive"]:
        assert total(vals, name) > 0, "%s: %s is 0: nothing was sent" % (mode, name)
    bad = {n: total(vals, n) for n in spec["zero"] if total(vals, n) != 0}
    assert not bad, "%s reports failed sends: %r" % (mode, bad)
    if mode == "vmagent":
        codes = {k: v for k, v in vals.items()
                 if k.startswith("vmagent_remotewrite_requests_total{") and v}
        assert codes and all('status_code="2XX"' in k for k in codes), codes
    lines = [l for l in p.log(mode).splitlines() if spec["log"].search(l)]
    assert not lines, "%s logged failed sends:\n%s" % (mode, "\n".join(lines[:10]))


def check_collector_clean(p, base):
    vals = metric_values(base + "/metrics")
    refused = {k: v for k, v in vals.items() if "_rejected_total" in k and "remote_write" in k and v}
    assert not refused, "collector refused data: %r" % refused
    assert total(vals, "vigil_remote_write_samples_appended_total") > 0
    assert "write refused" not in p.log("collector"), p.log("collector")[-2000:]


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "prometheus"
    assert mode in SENDERS, "mode must be one of %s" % ", ".join(SENDERS)
    with Procs() as p, FixtureServer(FIXTURE) as fx:
        base = start_collector(p)
        write_url = base + "/api/v1/write"
        start = start_prometheus if mode == "prometheus" else start_vmagent
        sender = start(p, fx.port, write_url)
        exp = expected_series(fx.port)

        def all_series_present():
            p.check_alive()
            data = api(base, "/api/v1/series", **{"match[]": '{job="fixture"}'})
            got = {tuple(sorted(s.items())) for s in data}
            return not [k for k in exp if k not in got] and got

        got = wait_until("all %d fixture series via %s" % (len(exp), mode), all_series_present,
                         timeout=120)
        print("%s: %d fixture series expected, %d stored (with up/scrape_* series)"
              % (mode, len(exp), len(got)))
        res = api(base, "/api/v1/query", query='{job="fixture"}')["result"]
        values = {tuple(sorted(r["metric"].items())): r["value"][1] for r in res}
        wrong = [(k, values.get(k), v) for k, v in exp.items()
                 if k not in values or not same_value(values[k], v)]
        assert not wrong, "values differ for %d series, e.g. %r" % (len(wrong), wrong[:3])

        # Let a few more sends (and Prometheus's metadata) go through, then
        # nothing may have failed on either side.
        before = total(metric_values(base + "/metrics"), "vigil_remote_write_requests_total")
        wait_until("more remote-write requests", lambda: total(
            metric_values(base + "/metrics"), "vigil_remote_write_requests_total") >= before + 3)
        check_sender_clean(p, mode, sender)
        check_collector_clean(p, base)
        p.check_alive()
    print("test_remote_write %s: OK" % mode)
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
