#!/usr/bin/env python3
"""test_audit_store.py - the collector's audit store over real processes.

Mode "http" (default):

Posts audit batches (hand-built by wire.py) to POST /ingest/v1/batch,
replays one (a no-op), dead-letters a bad line twice (stored once),
restarts the collector (nothing lost), queries with filters and pages
through everything with the cursor, runs `vigilctl audit verify`, erases a
subject over HTTP (queries stop returning them, verify still passes and
lists the erasure), then flips one byte of a sealed segment and expects
verify to fail naming that segment.

Signing: the collector creates <data_dir>/audit/signing.key (32 bytes,
0600) and warns that a key beside the data is weak; verify checks the
erasure lines' signatures with it, fails with another key, says
"signatures not checked" on a copy without the key, fails on a copy whose
erased count was edited and whose chain was re-hashed (what someone without
the key can do), and reports a chain stripped of signatures (as written
before signing existed) as unsigned, not tampered, unless
--require-signatures.

Mode "kafka": the same batches produced to a fresh audit topic on the real
broker (twice: a replay), consumed by the collector; after a clean restart
nothing is redelivered (offsets were committed after the audit fsync) and
a further batch is consumed. Every record is stored exactly once. This run
uses audit.signing_key_file, so no key is created beside the data.
"""
import glob
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import uuid
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import (BUILD, Procs, free_port, http_get, kafka_bootstrap,  # noqa: E402
                     wait_until)
import wire  # noqa: E402

TENANT = "acme"
USERS = ["u0", "u1", "u2", "u3", "u4"]


def make_batches(now_ms):
    """Three batches three hours back (sealed soon) and one in the current hour (open)."""
    old = now_ms - 3 * 3600 * 1000
    batches, expect = [], []
    for k in range(4):
        recs = []
        for i in range(50):
            n = k * 50 + i
            ts = (old if k < 3 else now_ms - 60000) + n * 10
            rec = dict(ts=ts, user=USERS[n % 5], action="login" if n % 2 else "read",
                       result="failure" if n % 7 == 0 else "success", file_id="fileA",
                       offset=n * 100)
            expect.append(rec)
            recs.append(wire.audit_record(ts, rec["user"], rec["action"], rec["result"],
                                          rec["file_id"], rec["offset"],
                                          original=json.dumps({"n": n, "user_id": rec["user"]})))
        batches.append(wire.audit_envelope("it-agent", TENANT, k + 1, recs))
    return batches, expect


def post(base, path, body, headers):
    req = urllib.request.Request(base + path, data=body, method="POST", headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return r.status


def post_batch(base, body):
    return post(base, "/ingest/v1/batch", body, {"Content-Encoding": "zstd"})


def query(base, **params):
    """All pages of a query: list of records, checking newest-first order."""
    out, cursor = [], None
    for _ in range(1000):
        p = dict(params, tenant=TENANT)
        if cursor:
            p["cursor"] = cursor
        url = base + "/api/v1/audit/query?" + urllib.parse.urlencode(p)
        with urllib.request.urlopen(url, timeout=30) as r:
            body = r.read().decode()
            cursor = r.headers.get("X-Vigil-Next-Cursor")
        out += [json.loads(l) for l in body.splitlines() if l]
        if not cursor:
            break
    ts = [r["ts_ms"] for r in out]
    assert ts == sorted(ts, reverse=True), "not newest first"
    return out


def stats(base):
    _, body = http_get(base + "/api/v1/audit/stats")
    return json.loads(body)["data"]


def start_collector(p, name, cfg, port, data_dir):
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--config", cfg,
                   "--listen", "127.0.0.1:%d" % port, "--data-dir", data_dir])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def stop(p, proc):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, "collector did not exit cleanly"


def verify(data_dir, *extra):
    r = subprocess.run([os.path.join(BUILD, "vigilctl"), "audit", "verify", "--data-dir", data_dir]
                       + list(extra), capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def rewrite_chain(chain, edit):
    """Edit chain lines (list of fields) and re-link and re-hash them all, as
    anyone who can write the file can; signatures are kept as they are."""
    with open(chain) as f:
        lines = [l.split() for l in f.read().splitlines()]
    prev = "0" * 64
    out = []
    for fields in lines:
        edit(fields)
        fields[8] = prev
        fields[9] = hashlib.sha256((prev + "|" + " ".join(fields[:8])).encode()).hexdigest()
        prev = fields[9]
        out.append(" ".join(f for f in fields if f) + "\n")
    with open(chain, "w") as f:
        f.write("".join(out))


def check_signatures(p, data_dir):
    """Signed erasure lines against the right key, another key, no key, an
    edited-and-re-hashed copy and a copy stripped of signatures."""
    key = os.path.join(data_dir, "audit", "signing.key")
    rc, out = verify(data_dir)
    assert rc == 0 and "signatures checked: " in out and " 0 ok" not in out, out
    wrong = os.path.join(p.dir, "wrong.key")
    with open(wrong, "wb") as f:
        f.write(os.urandom(32))
    rc, out = verify(data_dir, "--key-file", wrong)
    assert rc == 1 and "signed with another key" in out and "chain line" in out, out

    copy = os.path.join(p.dir, "copy")
    shutil.copytree(os.path.join(data_dir, "audit"), copy)
    os.unlink(os.path.join(copy, "signing.key"))
    rc, out = verify(copy)
    assert rc == 0 and "signatures not checked" in out, out
    chain = os.path.join(copy, TENANT, "chain.log")

    def erased_count(delta):
        def edit(fields):
            if fields[1] == "erase":
                fields[4] = str(int(fields[4]) + delta)
        return edit
    rewrite_chain(chain, erased_count(+1))
    rc, out = verify(copy, "--key-file", key)
    assert rc == 1 and "bad signature" in out and "chain line" in out, out

    def strip(fields):
        if len(fields) > 10:
            fields[10] = ""
    rewrite_chain(chain, erased_count(-1))
    rewrite_chain(chain, strip)
    rc, out = verify(copy, "--key-file", key)
    assert rc == 0 and "unsigned (written before signing)" in out, out
    rc, out = verify(copy, "--key-file", key, "--require-signatures")
    assert rc == 1 and "signature missing" in out, out


def keyset(recs):
    return sorted((r["file_id"], r["offset"]) for r in recs)


def main():
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        cfg = os.path.join(p.dir, "collector.yml")
        with open(cfg, "w") as f:
            f.write("audit:\n  seal_after: 1s\n  check_interval: 1s\n")
        port = free_port()
        base = start_collector(p, "collector", cfg, port, data_dir)
        batches, expect = make_batches(int(time.time() * 1000))
        st = os.stat(os.path.join(data_dir, "audit", "signing.key"))
        assert st.st_size == 32 and st.st_mode & 0o777 == 0o600, st
        assert "audit signing key stored beside the data" in p.log("collector")

        for b in batches:
            assert post_batch(base, b) == 204
        assert post_batch(base, batches[0]) == 204  # replay: a no-op
        assert keyset(query(base)) == keyset(expect), "replayed batch changed the store"

        bad = json.dumps({"tenant": TENANT, "reason": "invalid_json", "line": "{oops",
                          "file_id": "fileB", "offset": 7}).encode()
        for _ in range(2):
            assert post(base, "/ingest/v1/dlq", bad, {"Content-Type": "application/json"}) == 204
        _, body = http_get(base + "/api/v1/audit/dlq?tenant=" + TENANT)
        assert len(body.decode().splitlines()) == 1, body

        # the three old hours are sealed by the background task
        # (the current-hour batch is sealed too when the test runs across an hour
        # boundary, so only the total is exact)
        def old_sealed():
            st = stats(base)
            return st["hot"]["records"] >= 150 and st["hot"]["records"] + st["open_records"] == 200
        wait_until("old hours sealed", old_sealed, timeout=60)

        stop(p, p.procs[0][1])
        base = start_collector(p, "collector2", cfg, port, data_dir)
        got = query(base)
        assert keyset(got) == keyset(expect), "records lost or duplicated over a restart"
        assert post_batch(base, batches[1]) == 204  # replay after the restart: still a no-op
        assert len(query(base)) == 200

        # filters, and paging with a small page
        want_u1 = [r for r in expect if r["user"] == "u1"]
        assert keyset(query(base, user_id="u1")) == keyset(want_u1)
        want = [r for r in expect if r["action"] == "login" and r["result"] == "failure"]
        assert keyset(query(base, action="login", result="failure")) == keyset(want)
        paged = query(base, limit=7)
        assert keyset(paged) == keyset(expect) and len(paged) == 200
        frm = min(r["ts"] for r in expect[150:])
        assert keyset(query(base, **{"from": "%.3f" % (frm / 1000.0)})) == keyset(expect[150:])

        rc, out = verify(data_dir)
        assert rc == 0, out

        # erasure over HTTP
        req = urllib.request.Request(base + "/api/v1/audit/subject/u2?tenant=" + TENANT,
                                     method="DELETE")
        with urllib.request.urlopen(req, timeout=60) as r:
            erased = json.loads(r.read())["data"]["erased"]
        assert erased == sum(1 for r in expect if r["user"] == "u2"), erased
        assert query(base, user_id="u2") == []
        assert len(query(base)) == 160
        rc, out = verify(data_dir, "--tenant", TENANT)
        assert rc == 0, out
        assert "erasure" in out, out
        check_signatures(p, data_dir)

        # one flipped byte in a sealed segment: verify fails and names it
        seg = sorted(glob.glob(os.path.join(data_dir, "audit", TENANT, "hot", "*.seg")))[0]
        with open(seg, "r+b") as f:
            f.seek(-20, os.SEEK_END)
            c = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([c[0] ^ 0x01]))
        rc, out = verify(data_dir)
        assert rc != 0, out
        assert os.path.basename(seg) in out, out
    print("ok")


def produce(p, bootstrap, topic, bodies):
    files = []
    for i, b in enumerate(bodies):
        path = os.path.join(p.dir, "msg-%d-%d" % (len(os.listdir(p.dir)), i))
        with open(path, "wb") as f:
            f.write(b)
        files.append(path)
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-k", TENANT,
                    "-H", "vigil-schema=1", "-H", "content-encoding=zstd"] + files,
                   check=True, timeout=60)


def metric(base, name, labels):
    _, body = http_get(base + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and labels in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def main_kafka():
    bootstrap = kafka_bootstrap()
    run = uuid.uuid4().hex[:8]
    topic = "vigil.audit.it-%s" % run
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        cfg = os.path.join(p.dir, "collector.yml")
        key = os.path.join(p.dir, "audit.key")
        with open(key, "wb") as f:
            f.write(os.urandom(32))
        os.chmod(key, 0o600)
        with open(cfg, "w") as f:
            f.write("input:\n  kafka: {brokers: '%s', group_id: it-audit-%s, "
                    "metrics_topic: vigil.metrics.it-%s, audit_topic: %s}\n"
                    "audit:\n  seal_after: 1s\n  check_interval: 1s\n"
                    "  signing_key_file: %s\n" % (bootstrap, run, run, topic, key))
        port = free_port()
        base = start_collector(p, "collector", cfg, port, data_dir)
        batches, expect = make_batches(int(time.time() * 1000))
        produce(p, bootstrap, topic, batches[:3] + batches[:1])  # the last one is a replay
        wait_until("150 records via Kafka", lambda: len(query(base)) == 150, timeout=120)
        wait_until("the replay consumed",
                   lambda: metric(base, "vigil_audit_records_total", 'outcome="duplicate"') == 50,
                   timeout=120)
        stop(p, p.procs[0][1])
        base = start_collector(p, "collector2", cfg, port, data_dir)
        produce(p, bootstrap, topic, batches[3:])
        wait_until("200 records via Kafka", lambda: len(query(base)) == 200, timeout=120)
        assert keyset(query(base)) == keyset(expect)
        # nothing before the restart was offered again: its offsets were committed
        assert metric(base, "vigil_audit_records_total", 'outcome="duplicate"') == 0
        assert not os.path.exists(os.path.join(data_dir, "audit", "signing.key"))
        assert "stored beside the data" not in p.log("collector")
        rc, out = verify(data_dir, "--key-file", key)
        assert rc == 0 and "signatures checked" in out, out
        rc, out = verify(data_dir)
        assert rc == 0 and "signatures not checked" in out, out
    print("ok")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "kafka":
        main_kafka()
    else:
        main()
