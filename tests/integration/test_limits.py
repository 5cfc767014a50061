#!/usr/bin/env python3
"""Per-tenant ingestion limits on the collector's remote-write receiver.

A collector runs with limits.tenants.tiny = 50 samples/s (burst 100) and the
default limits for everyone else. Remote-write requests of 60 samples go to
tenant "tiny" back to back: the bucket refuses some with 429 and a
Retry-After header (whole seconds); the sender waits that long and sends the
same request again, as Prometheus and vmagent do. Tenant "roomy" sends the
same load at the same time and is never refused. At the end every sample of
both tenants is stored exactly once (checked through /api/v1/query with
X-Scope-OrgID), and the refusals are counted in
vigil_tsdb_limit_rejections_total{reason="rate",tenant="tiny"}.
"""
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import wire  # noqa: E402
from harness import Procs, free_port, http_get, wait_until  # noqa: E402

BUILD = os.environ.get("VIGIL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
REQUESTS = 8
SERIES = 6
PER_SERIES = 10  # 60 samples a request


def start_collector(p):
    port = free_port()
    cfg = os.path.join(p.dir, "collector.yml")
    with open(cfg, "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                "limits:\n"
                "  tenants:\n"
                "    tiny: {ingestion_rate: 50, ingestion_burst: 100}\n"
                % (port, os.path.join(p.dir, "data")))
    p.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)
    return base


def request_body(i, t0):
    series = []
    for s in range(SERIES):
        samples = [(t0 + (i * PER_SERIES + k) * 1000, float(i * PER_SERIES + k))
                   for k in range(PER_SERIES)]
        series.append(({"__name__": "lim_test", "s": str(s)}, samples))
    return wire.snappy_literal(wire.write_request(series))


def post(base, tenant, body):
    """(status, Retry-After header or None, body text)."""
    req = urllib.request.Request(base + "/api/v1/write", data=body, method="POST", headers={
        "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
        "X-Prometheus-Remote-Write-Version": "0.1.0", "X-Scope-OrgID": tenant})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.headers.get("Retry-After"), r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.headers.get("Retry-After"), e.read().decode()


def query(base, tenant, q, t):
    url = "%s/api/v1/query?%s" % (base, urllib.parse.urlencode({"query": q, "time": t}))
    req = urllib.request.Request(url, headers={"X-Scope-OrgID": tenant})
    with urllib.request.urlopen(req, timeout=30) as r:
        doc = json.loads(r.read().decode())
    assert doc["status"] == "success", doc
    return doc["data"]["result"]


def main():
    t0 = (int(time.time()) - 600) * 1000
    with Procs() as p:
        base = start_collector(p)
        refused = {"tiny": 0, "roomy": 0}
        hints = []
        for i in range(REQUESTS):
            body = request_body(i, t0)
            for tenant in ("roomy", "tiny"):
                deadline = time.monotonic() + 120
                while True:
                    status, ra, text = post(base, tenant, body)
                    if status == 204:
                        break
                    assert status == 429, "%s: status %d: %s" % (tenant, status, text)
                    assert ra is not None and ra.isdigit() and int(ra) >= 1, ra
                    assert "retry after" in text, text
                    refused[tenant] += 1
                    hints.append(int(ra))
                    assert time.monotonic() < deadline, "still refused after 120 s"
                    time.sleep(int(ra))  # the sender's side of the protocol: wait as told
                p.check_alive()
        print("refused: %r, Retry-After hints: %r" % (refused, hints))
        assert refused["tiny"] > 0, "the tiny tenant was never limited"
        assert refused["roomy"] == 0, "the other tenant was limited"
        # Every sample of both tenants is stored exactly once.
        t_end = (t0 + REQUESTS * PER_SERIES * 1000) / 1000.0
        for tenant in ("tiny", "roomy"):
            res = query(base, tenant, "count_over_time(lim_test[1h])", t_end)
            counts = sorted(float(r["value"][1]) for r in res)
            assert counts == [REQUESTS * PER_SERIES] * SERIES, (tenant, counts)
        metrics = http_get(base + "/metrics")[1].decode()
        line = 'vigil_tsdb_limit_rejections_total{reason="rate",tenant="tiny"} %d' % refused["tiny"]
        assert line in metrics, [l for l in metrics.splitlines() if "limit_rejections" in l]
        assert 'tenant="roomy"} 0' in metrics or 'tenant="roomy"' not in metrics
        p.check_alive()
    print("test_limits: OK")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
