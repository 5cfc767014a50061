#!/usr/bin/env python3
"""Blocks: the head is cut into on-disk blocks, compacted, queried with the
head, survives a restart, and a corrupt block is skipped, not fatal.

  1. A collector with storage.block_range 30m receives remote-write data
     whose timestamps span 6 hours (in order, starting 6 h ago: 40 series at
     30 s). The head spans more than 1.5 ranges, so blocks appear under
     <data_dir>/blocks/default/<ULID>/ and adjacent ones get compacted.
  2. A range query over the whole span returns every sample exactly once
     (blocks and head merged); /api/v1/series and label values see all.
  3. After a clean restart the answers are the same.
  4. One block's index is damaged (bytes flipped in the middle). A new
     collector starts, logs "skipping unreadable block" naming it, counts it
     in vigil_tsdb_blocks_corrupt_total and still serves every sample outside
     that block's time range (the other blocks and the head).
"""
import glob
import http.client
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, api, free_port, http_get, wait_until  # noqa: E402
from ship_helpers import stop  # noqa: E402
import wire  # noqa: E402

SERIES = 40
STEP_MS = 30000
SPAN_MS = 6 * 3600 * 1000
STEPS_PER_REQ = 60
NOW_MS = int(time.time()) * 1000
T0 = NOW_MS - SPAN_MS
NSTEPS = SPAN_MS // STEP_MS


def value(s, k):
    return float(k * 3 + s) if s % 2 else float((k * 7919 + s) % 1000) / 8


def start_collector(p, name, port, data_dir):
    cfg = os.path.join(p.dir, "collector.yml")
    with open(cfg, "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                "storage: {block_range: 30m}\n" % (port, data_dir))
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base


def send_all(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    hdr = {"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
           "X-Prometheus-Remote-Write-Version": "0.1.0"}
    for k0 in range(0, NSTEPS, STEPS_PER_REQ):
        series = []
        for s in range(SERIES):
            samples = [(T0 + k * STEP_MS, value(s, k)) for k in range(k0, min(k0 + STEPS_PER_REQ, NSTEPS))]
            series.append(({"__name__": "blk", "instance": "host%02d:9100" % s,
                            "job": "node" if s % 2 else "other"}, samples))
        conn.request("POST", "/api/v1/write", body=wire.snappy_literal(wire.write_request(series)),
                     headers=hdr)
        r = conn.getresponse()
        r.read()
        assert r.status == 204, r.status
    conn.close()


def blocks(data_dir):
    return sorted(glob.glob(os.path.join(data_dir, "blocks", "default", "*", "meta.json")))


def metas(data_dir):
    out = []
    for m in blocks(data_dir):
        with open(m) as f:
            out.append(json.load(f))
    return out


def stored(base):
    """instance -> {ts_ms: value} over the whole span, raw samples."""
    out = {}
    data = api(base, "/api/v1/query", query="blk[7h]", time="%.3f" % (NOW_MS / 1000.0 + 1))
    for r in data["result"]:
        d = out.setdefault(r["metric"]["instance"], {})
        for t, v in r["values"]:
            ms = int(round(float(t) * 1000))
            assert ms not in d, "duplicate sample %s %d" % (r["metric"]["instance"], ms)
            d[ms] = float(v)
    return out


def missing(have, skip=None):
    n = 0
    for s in range(SERIES):
        got = have.get("host%02d:9100" % s, {})
        for k in range(NSTEPS):
            t = T0 + k * STEP_MS
            if skip and skip[0] <= t < skip[1]:
                continue
            if got.get(t) != value(s, k):
                n += 1
    return n


def metric(base, name):
    _, body = http_get(base + "/metrics")
    for line in body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def check_all(base, what):
    have = stored(base)
    lost = missing(have)
    print("%s: %d series, %d samples missing" % (what, len(have), lost))
    assert lost == 0, "%s: %d samples missing" % (what, lost)
    start, end = str(T0 / 1000.0), str(NOW_MS / 1000.0)
    series = api(base, "/api/v1/series", **{"match[]": "blk", "start": start, "end": end})
    assert len(series) == SERIES, len(series)
    vals = api(base, "/api/v1/label/instance/values", start=start, end=end)
    assert len(vals) == SERIES, vals
    return have


def settled(data_dir):
    """Blocks on disk, no write in progress, compaction past the 30m level."""
    ms = metas(data_dir)
    if len(ms) < 2 or glob.glob(os.path.join(data_dir, "blocks", "default", "*.tmp")):
        return False
    return any(m["compaction"]["level"] >= 2 for m in ms)


def main():
    with Procs() as p:
        data_dir = os.path.join(p.dir, "data")
        port = free_port()
        base = start_collector(p, "collector1", port, data_dir)
        send_all(port)
        wait_until("blocks cut and compacted", lambda: settled(data_dir), timeout=120)
        ms = metas(data_dir)
        print("phase 1: %d blocks: %s" % (len(ms), [(m["minTime"], m["maxTime"], m["compaction"]["level"])
                                                   for m in ms]))
        for m in ms:
            assert m["vigil"]["resolution"] == 0 and m["stats"]["numSeries"] == SERIES, m
            assert m["compaction"]["sources"], m
        assert metric(base, "vigil_tsdb_blocks_cut_total") >= 2
        check_all(base, "phase 2")
        stop(p, "collector1")

        base = start_collector(p, "collector2", port, data_dir)
        check_all(base, "phase 3 (restart)")
        stop(p, "collector2")

        victim = max(metas(data_dir), key=lambda m: m["maxTime"] - m["minTime"])
        idx = os.path.join(data_dir, "blocks", "default", victim["ulid"], "index")
        size = os.path.getsize(idx)
        with open(idx, "r+b") as f:
            f.seek(size // 2)
            b = bytearray(f.read(8))
            f.seek(size // 2)
            f.write(bytes(x ^ 0xFF for x in b))
        base = start_collector(p, "collector3", port, data_dir)
        log = p.log("collector3")
        assert "skipping unreadable block" in log and victim["ulid"] in log, log[-3000:]
        assert "/index: index: " in log, log[-3000:]  # names the file and the section
        assert metric(base, "vigil_tsdb_blocks_corrupt_total") == 1
        have = stored(base)
        lost = missing(have, (victim["minTime"], victim["maxTime"]))
        print("phase 4: block %s [%d, %d) skipped; %d samples outside it missing"
              % (victim["ulid"], victim["minTime"], victim["maxTime"], lost))
        assert lost == 0
        assert len(have) == SERIES
        p.check_alive()
    print("test_blocks: OK")


if __name__ == "__main__":
    main()
