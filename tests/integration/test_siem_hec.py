#!/usr/bin/env python3
"""test_siem_hec.py - the collector's splunk_hec SIEM output against a
recording HEC receiver (receiver.py).

Ships audit batches over HTTP ingest and checks every stored record reaches
the receiver as a well-formed HEC event (time in seconds.ms, index,
sourcetype, the stored record as the event) with the configured token in
`Authorization: Splunk ...` (and the token nowhere in the collector's log).
Then the receiver answers 503 for a while and is stopped entirely, more
records are shipped, the collector is restarted (the cursor is durable), the
receiver comes back at the same address: every record arrives, records
delivered before the restart are not sent again beyond one in-flight batch,
and duplicates overall stay within one batch. Finally one batch answered 400
is dropped (counted in vigil_siem_records_dropped_total) and the records
after it still arrive: a bad batch does not wedge the queue.
"""
import json
import os
import signal
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Procs, free_port, http_get, parse_exposition, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402
from test_audit_store import start_collector  # noqa: E402
import wire  # noqa: E402

TENANTS = ["acme", "globex"]
TOKEN = "it-secret-hec-token-5c1d"
BATCH = 20


def post_batch(base, body):
    req = urllib.request.Request(base + "/ingest/v1/batch", data=body, method="POST",
                                 headers={"Content-Encoding": "zstd"})
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status in (200, 202, 204), r.status


def ship(base, seq, first, count, now_ms):
    """Records n = first..first+count-1, alternating tenants, one batch per tenant."""
    for t, tenant in enumerate(TENANTS):
        recs = []
        for n in range(first, first + count):
            if n % 2 != t:
                continue
            recs.append(wire.audit_record(now_ms - 60000 + n, "u%d" % (n % 5), "login", "success",
                                          "file-%s" % tenant, n * 100,
                                          original=json.dumps({"n": n})))
        post_batch(base, wire.audit_envelope("it-agent", tenant, seq * 10 + t, recs))


def events(req):
    """The HEC event objects of one recorded request (concatenated JSON)."""
    raw, out, dec, i = req["raw"].decode(), [], json.JSONDecoder(), 0
    while i < len(raw):
        obj, j = dec.raw_decode(raw, i)
        out.append(obj)
        i = j
        while i < len(raw) and raw[i].isspace():
            i += 1
    return out


def delivered(recv):
    """[(n, event)] of every event in a request answered 2xx, in order."""
    out = []
    for r in recv.received():
        if 200 <= r["status"] < 300:
            for e in events(r):
                out.append((json.loads(e["event"]["original"])["n"], e))
    return out


def check_request(r):
    assert r["path"] == "/services/collector/event", r["path"]
    assert r["headers"].get("Authorization") == "Splunk " + TOKEN, r["headers"]
    evs = events(r)
    assert 1 <= len(evs) <= BATCH, len(evs)
    for e in evs:
        assert set(e) == {"time", "host", "sourcetype", "index", "event"}, e
        assert e["index"] == "audit" and e["sourcetype"] == "vigil:audit", e
        ev = e["event"]
        assert ev["tenant"] in TENANTS and ev["action"] == "login", ev
        assert abs(e["time"] - ev["ts_ms"] / 1000.0) < 1e-6, e


def metric(base, name, output="hec"):
    _, body = http_get(base + "/metrics")
    for labels, val in parse_exposition(body.decode() if isinstance(body, bytes) else body):
        if labels["__name__"] == name and labels.get("output") == output:
            return float(val)
    return None


def stop(proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "collector did not exit cleanly"


def all_arrived(recv, upto, earlier=()):
    return set(n for n, _ in delivered(recv)) | set(n for n, _ in earlier) >= set(range(upto))


def main():
    now_ms = int(time.time() * 1000)
    hec_port = free_port()
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        port = free_port()
        cfg = os.path.join(p.dir, "collector.yml")
        with open(cfg, "w") as f:
            f.write("siem:\n  - type: splunk_hec\n    name: hec\n"
                    "    url: http://127.0.0.1:%d/\n    token: %s\n    index: audit\n"
                    "    batch_records: %d\n    timeout: 2s\n" % (hec_port, TOKEN, BATCH))
        recv = Receiver(port=hec_port).__enter__()
        proc = None
        try:
            base = start_collector(p, "collector", cfg, port, data_dir)
            proc = p.procs[-1][1]
            # 1. healthy: everything arrives, well-formed, with the token
            ship(base, 1, 0, 100, now_ms)
            wait_until("100 records at HEC", lambda: all_arrived(recv, 100), timeout=120)
            for r in recv.received():
                check_request(r)
            # 2. the receiver answers 503, then is down entirely
            recv.default = 503
            ship(base, 2, 100, 60, now_ms)
            wait_until("503s answered", lambda: sum(r["status"] == 503
                                                    for r in recv.received()) >= 2, timeout=120)
            recv.__exit__(None, None, None)
            fails = metric(base, "vigil_siem_send_failures_total")
            ship(base, 3, 160, 40, now_ms)
            wait_until("sends fail while down",
                       lambda: metric(base, "vigil_siem_send_failures_total") > fails, timeout=120)
            assert metric(base, "vigil_siem_queue_length") >= 1
            before = delivered(recv)
            # 3. restart the collector while the receiver is down
            stop(proc)
            base = start_collector(p, "collector2", cfg, port, data_dir)
            proc = p.procs[-1][1]
            ship(base, 4, 200, 50, now_ms)
            # 4. the receiver comes back: everything arrives
            recv = Receiver(port=hec_port).__enter__()
            wait_until("250 records at HEC", lambda: all_arrived(recv, 250, before),
                       timeout=180)
            after = delivered(recv)
            for r in recv.received():
                check_request(r)
            seen_before = set(n for n, _ in before)
            resent = [n for n, _ in after if n in seen_before]
            assert len(resent) <= BATCH, "resent after restart: %d records" % len(resent)
            total = len(before) + len(after)
            uniq = len(seen_before | set(n for n, _ in after))
            assert uniq == 250, uniq
            assert total - uniq <= BATCH, "duplicates: %d" % (total - uniq)
            wait_until("queue drained", lambda: metric(base, "vigil_siem_queue_length") == 0,
                       timeout=60)
            # 5. a batch answered 400 is dropped and counted; the queue moves on
            dropped0 = metric(base, "vigil_siem_records_dropped_total") or 0
            recv.script = [400]
            ship(base, 5, 250, 10, now_ms)
            wait_until("drop counted",
                       lambda: metric(base, "vigil_siem_records_dropped_total") > dropped0,
                       timeout=120)
            ship(base, 6, 260, 10, now_ms)
            wait_until("records after the 400 arrive",
                       lambda: set(range(260, 270)) <= set(n for n, _ in delivered(recv)),
                       timeout=120)
            for name in ("collector", "collector2"):
                assert TOKEN not in p.log(name), "token logged by " + name
            sent = metric(base, "vigil_siem_records_sent_total")
            assert sent and sent >= 10, sent
        finally:
            recv.__exit__(None, None, None)
    print("ok")


if __name__ == "__main__":
    main()
