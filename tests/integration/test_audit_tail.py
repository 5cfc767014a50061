#!/usr/bin/env python3
"""Agent audit path end to end: tail JSON audit files that rotate (rename and
copytruncate) while lines are written, ship over HTTP to a local recording
receiver, kill -9 the agent and restart it.

Checks:
  - every valid line reaches the receiver, and exactly once once deliveries
    are deduplicated by source identity (file_id, offset), as the collector
    does. How lines are counted: each valid line carries a unique "n"; the
    receiver keeps the set of (file_id, offset) keys and, per key, the n of
    the record. Each n must appear under exactly one key (two keys for one n
    would be a duplicate that source-identity dedup cannot absorb), and every
    n written must be there (nothing lost). Re-deliveries of the same key
    (after the kill -9) are allowed and reported;
  - every malformed line reaches the DLQ endpoint (POST /ingest/v1/dlq) with
    the expected reason, counted the same way by (file_id, offset);
  - no raw e-mail address or card number appears in anything shipped
    (records or dead letters);
  - while the receiver answers 503 nothing is lost either (backpressure),
    and the checkpoint file exists under data_dir.
The copytruncate step waits until the agent has read the file before it
truncates: lines written between logrotate's copy and its truncate are lost
by copytruncate itself, for any tailer, so the test does not measure that.
Batches are zstd frames; they are decompressed with the zstd command-line
tool and the protobuf is read by the small decoder below.
"""
import http.server
import json
import os
import shutil
import signal
import subprocess
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, wait_until  # noqa: E402
from ship_helpers import metric, stop, write_configs  # noqa: E402

EMAIL = "jane.doe.%d@example.com"
CARD = "4111 1111 1111 1111"


def varint(b, i):
    shift = n = 0
    while True:
        c = b[i]
        i += 1
        n |= (c & 0x7F) << shift
        shift += 7
        if c < 0x80:
            return n, i


def fields(b):
    """Yield (field number, wire type, value) of one protobuf message."""
    i = 0
    while i < len(b):
        key, i = varint(b, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = varint(b, i)
        elif wt == 2:
            n, i = varint(b, i)
            v, i = b[i:i + n], i + n
        elif wt == 1:
            v, i = b[i:i + 8], i + 8
        elif wt == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        yield num, wt, v


def audit_records(body):
    raw = subprocess.run(["zstd", "-d", "-c", "-q"], input=body, stdout=subprocess.PIPE,
                         check=True).stdout
    out = []
    for num, _, v in fields(raw):
        if num != 11:
            continue
        for rn, _, rv in fields(v):
            if rn != 1:
                continue
            rec = {}
            for fnum, _, fv in fields(rv):
                rec[fnum] = fv
            out.append(rec)
    return out


class Receiver:
    """Records audit records and dead letters; answers `status` (200 or 503)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.records = {}  # (file_id, offset) -> n
        self.deliveries = 0
        self.dead = {}  # (file_id, offset) -> reason
        self.raw = []  # every decoded text, for the redaction check
        self.by_n = {}  # n -> set of keys
        self.status = 200
        outer = self

        class H(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with outer.lock:
                    code = outer.status
                if code == 200:
                    outer.take(self.path, body)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *a):
                pass

        self.srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.port = self.srv.server_address[1]
        threading.Thread(target=self.srv.serve_forever, daemon=True).start()

    def take(self, path, body):
        if path == "/ingest/v1/dlq":
            d = json.loads(body)
            with self.lock:
                self.dead[(d["file_id"], d["offset"])] = d["reason"]
                self.raw.append(body.decode())
            return
        for r in audit_records(body):
            orig = r.get(8, b"").decode()
            key = (r.get(9, b"").decode(), r.get(10, 0))
            n = json.loads(orig)["n"]
            with self.lock:
                self.deliveries += 1
                self.records[key] = n
                self.by_n.setdefault(n, set()).add(key)
                self.raw.append(orig + " " + " ".join(
                    r.get(k, b"").decode() for k in (2, 3, 4, 5, 6, 7)))

    def counts(self):
        with self.lock:
            return len(self.by_n), len(self.dead)


class Writer:
    def __init__(self, path):
        self.path = path
        self.n = 0
        self.bad = []  # expected reasons, in order

    def valid(self, k):
        with open(self.path, "a") as f:
            for _ in range(k):
                self.n += 1
                f.write(json.dumps({
                    "timestamp": "2026-11-28T04:36:11.%03dZ" % (self.n % 1000),
                    "user_id": EMAIL % self.n, "session_id": "s-%d" % self.n,
                    "action": "pay", "resource": "card %s" % CARD, "result": "ok",
                    "ip_address": "10.0.0.1", "n": self.n}) + "\n")

    def malformed(self):
        lines = [(b'{"timestamp": "2026-11-28T04:36:11Z", "user_id": "x@example.com",\n', "invalid_json"),
                 (b'{"timestamp": "2026-11-28T04:36:11Z", "user_id": "u"}\n', "missing_field"),
                 (b'{"user_id": "\xff\xfe", "card": "4111111111111111"}\n', "invalid_utf8"),
                 (b'{"x": "' + b"a" * 5000 + b'"}\n', "too_long"),
                 (b'{"timestamp": "yesterday", "user_id": "u", "session_id": "s", "action": "a", '
                  b'"resource": "r", "result": "ok", "ip_address": "::1"}\n', "invalid_timestamp")]
        with open(self.path, "ab") as f:
            for line, why in lines:
                f.write(line)
                self.bad.append(why)


def main():
    rcv = Receiver()
    with Procs() as procs:
        logs = os.path.join(procs.dir, "logs")
        os.makedirs(logs)
        app = os.path.join(logs, "app.jsonl")
        data = os.path.join(procs.dir, "agent-data")
        aport = free_port()
        abase = "http://127.0.0.1:%d" % aport
        cfg = write_configs(procs.dir, agent=(
            "agent: {listen: '127.0.0.1:%d', node: it-audit, tenant: t0, data_dir: '%s'}\n"
            "scrape_configs: []\n"
            "host_metrics: {enabled: false}\n"
            "audit_logs:\n"
            "  - paths: ['%s*']\n"
            "    exclude: ['*.copy']\n"
            "    tenant: team-a\n"
            "    read_from_head: true\n"
            "    max_line_bytes: 4KiB\n"
            "    redact: [{name: email}, {name: credit_card}]\n"
            "output:\n"
            "  http: {url: 'http://127.0.0.1:%d'}\n"
            "  batch_max_delay: 100ms\n" % (aport, data, app, rcv.port)))["agent"]
        agent = [os.path.join(BUILD, "vigil-agent"), "--config", cfg]
        w = Writer(app)
        w.valid(500)
        w.malformed()
        procs.start("agent1", agent)

        def shipped(n, nbad):
            def f():
                procs.check_alive()
                return rcv.counts() >= (n, nbad)
            return f

        wait_until("first lines shipped", shipped(w.n, len(w.bad)), timeout=120)
        # rename rotation while writing; the writer finishes the old file after the rename
        os.rename(app, app + ".1")
        with open(app + ".1", "a") as f:
            f.write(json.dumps({"timestamp": 1795840571, "user_id": "late@example.com",
                                "session_id": "s", "action": "a", "resource": "r",
                                "result": "ok", "ip_address": "::1", "n": 0}) + "\n")
        w.valid(500)
        wait_until("after rename", shipped(w.n + 1, len(w.bad)), timeout=120)
        # copytruncate (after the agent read the file: see the docstring)
        shutil.copy(app, app + ".copy")
        with open(app, "r+") as f:
            f.truncate(0)
        w.valid(300)
        w.malformed()
        wait_until("after copytruncate", shipped(w.n + 1, len(w.bad)), timeout=120)
        # the receiver refuses for a while: backpressure, nothing lost
        with rcv.lock:
            rcv.status = 503
        w.valid(200)
        wait_until("agent retrying",
                   lambda: (metric(abase, "vigil_agent_audit_ship_failures_total") or 0) >= 2)
        assert os.path.exists(os.path.join(data, "audit", "checkpoints"))
        with rcv.lock:
            rcv.status = 200
        wait_until("after the outage", shipped(w.n + 1, len(w.bad)), timeout=120)
        # kill -9 while lines are being written, then restart
        w.valid(300)
        stop(procs, "agent1", sig=signal.SIGKILL)
        w.valid(300)
        w.malformed()
        procs.start("agent2", agent)
        wait_until("after kill -9 and restart", shipped(w.n + 1, len(w.bad)), timeout=180)
        stop(procs, "agent2")

        with rcv.lock:
            missing = [n for n in range(0, w.n + 1) if n not in rcv.by_n]
            twice = {n: k for n, k in rcv.by_n.items() if len(k) > 1}
            reasons = sorted(rcv.dead.values())
            raw = "\n".join(rcv.raw)
            redelivered = rcv.deliveries - len(rcv.records)
        assert not missing, "lines never shipped: %r" % missing[:20]
        assert not twice, "lines shipped under two source identities: %r" % list(twice.items())[:5]
        assert len(rcv.records) == w.n + 1, (len(rcv.records), w.n + 1)
        assert reasons == sorted(w.bad), "dead letters %r, expected %r" % (reasons, sorted(w.bad))
        assert "@example.com" not in raw, "a raw e-mail address was shipped"
        assert CARD not in raw and "4111111111111111" not in raw, "a raw card number was shipped"
        print("audit tail: %d lines shipped once by (file_id, offset), %d re-deliveries absorbed, "
              "%d dead letters" % (len(rcv.records), redelivered, len(rcv.dead)))
    rcv.srv.shutdown()
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main()
