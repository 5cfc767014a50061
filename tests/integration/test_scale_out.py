#!/usr/bin/env python3
"""Scale-out: two collectors in one consumer group on a 4-partition topic;
one is stopped mid-stream, the other takes over, and every sample sent is
stored exactly once across the two.

  1. A real broker (scripts/kafka.sh), a fresh 4-partition topic and group.
     Collectors A and B join the group; wait until both own partitions.
  2. A producer (kcat, key = tenant) sends agent batches for eight tenants,
     round after round, each batch with its own samples. After the first
     rounds are consumed, A gets SIGTERM while the producer keeps going:
     A must sync its WAL and commit its offsets before it gives the
     partitions up, and B takes them over from there.
  3. A is restarted without Kafka on its own data_dir (its WAL replays) so
     its store can be read. Wait until A's and B's samples together cover
     everything sent, then check: no (tenant, series, timestamp) is stored by
     both, and the counts add up to exactly what was sent.
"""
import http.client
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.parse
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Procs, free_port, http_get, kafka_bootstrap,  # noqa: E402
                     wait_until)
from ship_helpers import stop  # noqa: E402
import wire  # noqa: E402

TENANTS = ["tenant-%d" % i for i in range(8)]
SERIES = 5
SAMPLES = 4
ROUNDS_BEFORE = 8
ROUNDS_TOTAL = 24
T0 = (int(time.time()) - 3 * 3600) * 1000


def partitions(bootstrap, topic):
    out = subprocess.run(["kcat", "-b", bootstrap, "-L", "-t", topic, "-J"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, timeout=30)
    if out.returncode:
        return 0
    doc = json.loads(out.stdout)
    for t in doc.get("topics", []):
        if t.get("topic") == topic and not t.get("error"):
            return len(t.get("partitions", []))
    return 0


def batch_series(rnd):
    """The series and samples of one round (the same for every tenant)."""
    out = []
    for s in range(SERIES):
        samples = [(T0 + (rnd * SAMPLES + k) * 1000, float(rnd * 100 + k * 10 + s))
                   for k in range(SAMPLES)]
        out.append(({"__name__": "scale_out", "series": "s%d" % s}, samples))
    return out


def produce_round(bootstrap, topic, d, rnd):
    for t in TENANTS:
        path = os.path.join(d, "%s-%d.bin" % (t, rnd))
        with open(path, "wb") as f:
            f.write(wire.batch_envelope("scale-agent-" + t, t, rnd + 1, batch_series(rnd)))
        subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-k", t, path], check=True,
                       timeout=60)


def collector_yaml(d, name, port, bootstrap, topic, group):
    path = os.path.join(d, name + ".yml")
    with open(path, "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s/%s-data'}\n" % (port, d, name))
        if bootstrap:
            f.write("input:\n  kafka:\n    brokers: '%s'\n    group_id: '%s'\n"
                    "    metrics_topic: '%s'\n    audit_topic: ''\n"
                    % (bootstrap, group, topic))
    return path


def start(p, name, cfg, port):
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def samples_of(base, tenant, eval_s):
    """{(series, ts_ms): value} the collector stores for tenant."""
    host, port = base[len("http://"):].split(":")
    q = urllib.parse.urlencode({"query": "scale_out[4h]", "time": str(eval_s)})
    c = http.client.HTTPConnection(host, int(port), timeout=30)
    c.request("GET", "/api/v1/query?" + q, headers={"X-Scope-OrgID": tenant})
    doc = json.loads(c.getresponse().read())
    c.close()
    assert doc["status"] == "success", doc
    out = {}
    for r in doc["data"]["result"]:
        for t, v in r["values"]:
            out[(r["metric"]["series"], int(round(float(t) * 1000)))] = float(v)
    return out


def all_samples(base, eval_s):
    return {t: samples_of(base, t, eval_s) for t in TENANTS}


def metric(base, name):
    _, body = http_get(base + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " "):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def owns_partitions(p, name):
    return any("kafka partitions assigned" in l and "n=0" not in l
               for l in p.log(name).splitlines())


def main():
    bootstrap = kafka_bootstrap()
    run = uuid.uuid4().hex[:8]
    topic, group = "vigil.metrics.scale-%s" % run, "vigil-scale-%s" % run
    wire.kafka_create_topic(bootstrap, topic, 4)
    wait_until("topic with 4 partitions", lambda: partitions(bootstrap, topic) == 4)
    sent = len(TENANTS) * ROUNDS_TOTAL * SERIES * SAMPLES
    with Procs() as p:
        d = p.dir
        pa, pb = free_port(), free_port()
        base_a = start(p, "A", collector_yaml(d, "A", pa, bootstrap, topic, group), pa)
        base_b = start(p, "B", collector_yaml(d, "B", pb, bootstrap, topic, group), pb)
        wait_until("both collectors own partitions",
                   lambda: owns_partitions(p, "A") and owns_partitions(p, "B"), timeout=120)

        for r in range(ROUNDS_BEFORE):
            produce_round(bootstrap, topic, d, r)
        wait_until("A and B consuming",
                   lambda: metric(base_a, "vigil_kafka_messages_consumed_total") > 0 and
                   metric(base_b, "vigil_kafka_messages_consumed_total") > 0, timeout=120)

        errors = []

        def produce_rest():
            try:
                for r in range(ROUNDS_BEFORE, ROUNDS_TOTAL):
                    produce_round(bootstrap, topic, d, r)
            except Exception as e:  # reported by the main thread
                errors.append(repr(e))

        prod = threading.Thread(target=produce_rest, daemon=True)
        prod.start()
        stop(p, "A", signal.SIGTERM)  # mid-stream: the producer is still sending
        print("A stopped; B takes over")
        prod.join(timeout=300)
        assert not errors and not prod.is_alive(), errors

        # A again, without Kafka, to read what it stored (its WAL replays).
        pa2 = free_port()
        base_a = start(p, "A-read", collector_yaml(d, "A", pa2, None, None, None), pa2)
        eval_s = int(time.time())
        got_a = all_samples(base_a, eval_s)
        n_a = sum(len(v) for v in got_a.values())

        def covered():
            got_b = all_samples(base_b, eval_s)
            return got_b if n_a + sum(len(v) for v in got_b.values()) >= sent else None

        got_b = wait_until("A and B together hold every sample sent", covered, timeout=180)
        n_b = sum(len(v) for v in got_b.values())
        both = sum(len(set(got_a[t]) & set(got_b[t])) for t in TENANTS)
        union = sum(len(set(got_a[t]) | set(got_b[t])) for t in TENANTS)
        print("sent %d: A stored %d, B stored %d, stored by both %d" % (sent, n_a, n_b, both))
        assert n_a > 0 and n_b > 0, "both collectors must have consumed something"
        assert both == 0, "%d samples stored by both collectors" % both
        assert union == sent and n_a + n_b == sent, (union, n_a, n_b, sent)
        for t in TENANTS:  # and the values are the ones sent
            merged = {**got_a[t], **got_b[t]}
            for r in range(ROUNDS_TOTAL):
                for labels, samples in batch_series(r):
                    for ts, v in samples:
                        assert merged.get((labels["series"], ts)) == v, (t, labels, ts)
        # B owns all four partitions and has consumed everything: its lag
        # gauge for the topic reads 0 (it exists only when it is exported).
        lag_name = 'vigil_kafka_consumer_lag{topic="%s"}' % topic
        wait_until("B reports consumer lag 0",
                   lambda: lag_name in http_get(base_b + "/metrics")[1].decode()
                   and metric(base_b, lag_name) == 0.0, timeout=60)
        p.check_alive()
    print("test_scale_out: OK")


if __name__ == "__main__":
    main()
