#!/usr/bin/env python3
"""WAL durability: kill -9 during heavy ingest loses nothing acknowledged, and
a damaged WAL is reported, counted and survived.

  1. A collector on a private data_dir. Eight sender threads post
     remote-write requests (and one thread agent batches to
     /ingest/v1/batch), each to its own series, and record every sample of
     every request answered 204: an answer is a promise that the sample is
     in an fsynced WAL record.
  2. Once enough requests are acknowledged, while the senders still run,
     the collector gets SIGKILL. Requests in flight fail and are not counted.
  3. A new collector on the same data_dir replays the WAL. Every
     acknowledged sample must come back from /api/v1/query (a range
     selector over the whole span, per series, raw samples).
  4. Stopped cleanly, the crash segment is damaged: bytes flipped in its
     middle and its tail cut off. A third collector must start, log a
     "corrupt WAL record" error naming the file and offset, count it in
     vigil_tsdb_wal_corrupt_records_total, and still serve the intact data.
"""
import http.client
import os
import signal
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, api, free_port, http_get, wait_until  # noqa: E402
from ship_helpers import stop  # noqa: E402
import wire  # noqa: E402

THREADS = 8
SERIES_PER_THREAD = 20
STEPS_PER_REQ = 5
MIN_ACKED_REQS = 400
T0 = (int(time.time()) - 6 * 3600) * 1000  # data starts 6 h ago, 1 s apart
STEP_MS = 1000


class Sender(threading.Thread):
    """Posts requests until stopped; keeps every acknowledged (series, ts, value)."""

    def __init__(self, port, idx, kind):
        super().__init__(daemon=True)
        self.port, self.idx, self.kind = port, idx, kind
        self.acked = {}  # series name -> {ts: value}
        self.reqs = 0
        self.stop = False
        self.error = None

    def build(self, step):
        series = []
        for s in range(SERIES_PER_THREAD):
            name = "t%d_s%d" % (self.idx, s)
            samples = [(T0 + (step + k) * STEP_MS, float(self.idx * 1000000 + (step + k) * 10 + s))
                       for k in range(STEPS_PER_REQ)]
            series.append(({"__name__": "walcrash", "series": name, "kind": self.kind}, samples))
        return series

    def post(self, conn, series):
        if self.kind == "rw":
            body = wire.snappy_literal(wire.write_request(series))
            hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                   "X-Prometheus-Remote-Write-Version": "0.1.0"}
            path = "/api/v1/write"
        else:
            body = wire.batch_envelope("walcrash-agent-%d" % self.idx, "default", self.reqs + 1, series)
            hdr = {"Content-Encoding": "zstd", "Content-Type": "application/x-protobuf"}
            path = "/ingest/v1/batch"
        conn.request("POST", path, body=body, headers=hdr)
        r = conn.getresponse()
        r.read()
        return r.status

    def run(self):
        step = 0
        conn = None
        while not self.stop:
            series = self.build(step)
            try:
                conn = conn or http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
                status = self.post(conn, series)
            except (OSError, http.client.HTTPException):
                return  # the collector died: whatever was in flight is not acknowledged
            if status != 204:
                self.error = "sender %d: status %d" % (self.idx, status)
                return
            for labels, samples in series:
                d = self.acked.setdefault(labels["series"], {})
                for t, v in samples:
                    d[t] = v
            self.reqs += 1
            step += STEPS_PER_REQ


def start_collector(p, name, port, data_dir):
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--listen", "127.0.0.1:%d" % port,
                   "--data-dir", data_dir])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def stored(base, eval_s):
    """series name -> {ts_ms: value}, read back as raw samples."""
    out = {}
    data = api(base, "/api/v1/query", query='walcrash[7h]', time=str(eval_s))
    for r in data["result"]:
        d = out.setdefault(r["metric"]["series"], {})
        for t, v in r["values"]:
            d[int(round(float(t) * 1000))] = float(v)
    return out


def metric(base, name):
    _, body = http_get(base + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def missing(acked, have):
    n = 0
    for s, d in acked.items():
        got = have.get(s, {})
        for t, v in d.items():
            if got.get(t) != v:
                n += 1
    return n


def damage_segment(path):
    size = os.path.getsize(path)
    with open(path, "r+b") as f:
        f.seek(size // 2)
        b = bytearray(f.read(16))
        f.seek(size // 2)
        f.write(bytes(x ^ 0xA5 for x in b))
    os.truncate(path, size - 7)


def main():
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        port = free_port()
        base = start_collector(p, "collector1", port, data_dir)
        senders = [Sender(port, i, "agent" if i == 0 else "rw") for i in range(THREADS)]
        for s in senders:
            s.start()
        wait_until("%d acknowledged requests" % MIN_ACKED_REQS,
                   lambda: sum(s.reqs for s in senders) >= MIN_ACKED_REQS, timeout=240)
        stop(p, "collector1", signal.SIGKILL)
        for s in senders:
            s.stop = True
            s.join(timeout=60)
        assert not any(s.error for s in senders), [s.error for s in senders]
        acked = {}
        for s in senders:
            acked.update(s.acked)
        nacked = sum(len(d) for d in acked.values())
        print("phase 1: %d requests, %d samples acknowledged before kill -9"
              % (sum(s.reqs for s in senders), nacked))

        base = start_collector(p, "collector2", port, data_dir)
        eval_s = int(time.time())
        have = stored(base, eval_s)
        lost = missing(acked, have)
        print("phase 2: replayed; %d acknowledged samples missing" % lost)
        assert lost == 0, "%d acknowledged samples lost after kill -9" % lost
        assert metric(base, "vigil_tsdb_wal_replayed_samples_total") >= nacked
        stop(p, "collector2")

        wal = os.path.join(data_dir, "wal")
        segs = sorted(os.listdir(wal), key=lambda n: os.path.getsize(os.path.join(wal, n)))
        victim = os.path.join(wal, segs[-1])
        damage_segment(victim)
        print("phase 3: damaged %s (%d bytes)" % (victim, os.path.getsize(victim)))

        base = start_collector(p, "collector3", port, data_dir)
        log = p.log("collector3")
        assert "corrupt WAL record" in log and os.path.basename(victim) in log, log[-3000:]
        corrupt = metric(base, "vigil_tsdb_wal_corrupt_records_total")
        assert corrupt and corrupt >= 1, corrupt
        # The disk gauges the "storage disk nearly full" alerts read.
        avail = metric(base, "vigil_tsdb_wal_fs_avail_bytes")
        size = metric(base, "vigil_tsdb_wal_fs_size_bytes")
        assert size and avail and 0 < avail <= size, (avail, size)
        have = stored(base, eval_s)
        kept = nacked - missing(acked, have)
        print("phase 3: %d corrupt records counted; %d of %d samples still served"
              % (corrupt, kept, nacked))
        assert kept >= nacked // 3, "too little survived a local corruption: %d of %d" % (kept, nacked)
        # The damage is local: a series missing entirely would mean the rest of the log was lost.
        assert len(have) == len(acked), (len(have), len(acked))
        p.check_alive()
    print("test_wal_crash: OK")


if __name__ == "__main__":
    main()
