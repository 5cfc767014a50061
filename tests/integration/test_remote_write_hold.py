#!/usr/bin/env python3
"""remote_write across block cuts while the remote is down (the WAL hold).

The collector cuts 1-minute blocks (storage.block_range: 1m, by sample time)
and rolls 1 MiB WAL segments, so samples spanning ~40 minutes make several
cuts and several segments. Each case ships them while the VictoriaMetrics
remote_write points at is down, waits until the block writer has released
segments the sender has not sent (vigil_tsdb_wal_held_bytes > 0), then
starts VictoriaMetrics:

1. under storage.wal_max_hold_bytes (the default): the collector is killed
   (-9) and restarted while segments are held: its replay skips the released
   ones (logged as held_segments) and it still serves every sample once;
   then every sample reaches VictoriaMetrics exactly once, nothing is counted
   as dropped, and the held segments go once the sender is past them;
2. with wal_max_hold_bytes: 1MiB: the oldest held segments are deleted, and
   vigil_remote_write_dropped_samples_total{reason="wal_truncated"} equals
   exactly the number of samples VictoriaMetrics never gets; the rest arrive
   exactly once.
"""
import json
import os
import re
import signal
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Procs, api, free_port, http_get, wait_until  # noqa: E402
import wire  # noqa: E402

BUILD = os.environ.get("VIGIL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
NSERIES = 100
PER_REQ = 60  # timestamps per request, one second apart
NREQ = 40     # 40 minutes of samples: 240000 in all, about 6 MiB of WAL


def post_all(base, t0_ms):
    for r in range(NREQ):
        ts = [t0_ms + (r * PER_REQ + k) * 1000 for k in range(PER_REQ)]
        series = [({"__name__": "rwhold", "i": str(i)}, [(t, float(t // 1000 + i)) for t in ts])
                  for i in range(NSERIES)]
        body = wire.snappy_literal(wire.write_request(series))
        req = urllib.request.Request(base + "/api/v1/write", data=body, method="POST", headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            assert resp.status == 204, resp.status
    return NSERIES * PER_REQ * NREQ


def vm_counts(vm):
    """(samples with duplicates, distinct (series, timestamp) pairs)."""
    q = urllib.parse.urlencode({"match[]": '{__name__="rwhold"}'})
    with urllib.request.urlopen(vm + "/api/v1/export?" + q, timeout=30) as r:
        lines = r.read().decode().splitlines()
    total, distinct = 0, 0
    for line in lines:
        o = json.loads(line)
        total += len(o["timestamps"])
        distinct += len(set(o["timestamps"]))
    return total, distinct


def metrics(base):
    _, body = http_get(base + "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("vigil_") and not line.startswith("#"):
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def start_vm(p, name, port, data):
    p.start(name, ["victoria-metrics", "-httpListenAddr=127.0.0.1:%d" % port,
                   "-storageDataPath=" + data, "-retentionPeriod=100y"])
    url = "http://127.0.0.1:%d" % port
    wait_until(name + " up", lambda: http_get(url + "/health")[0] == 200, timeout=60)
    return url


def served(base, t_end_ms):
    """Samples of rwhold the collector itself serves (blocks and head)."""
    r = api(base, "/api/v1/query", query="sum(count_over_time(rwhold[3h]))",
            time="%.3f" % (t_end_ms / 1000.0))["result"]
    return int(float(r[0]["value"][1])) if r else 0


def start_collector(p, name, vm_port, hold, port=None, data=None):
    port = port or free_port()
    cfg = os.path.join(p.dir, name + ".yml")
    with open(cfg, "w") as f:
        f.write("storage: {block_range: 1m, wal_segment_size: 1MiB%s}\n"
                "limits: {default: {ingestion_rate: 100000000, ingestion_burst: 100000000}}\n"
                "remote_write:\n"
                "  - url: 'http://127.0.0.1:%d/api/v1/write'\n"
                "    name: vm\n"
                "    queue_config: {batch_send_deadline: 200ms, min_backoff: 30ms, "
                "max_backoff: 500ms}\n"
                % (", wal_max_hold_bytes: %s" % hold if hold else "", vm_port))
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--config", cfg, "--listen",
                   "127.0.0.1:%d" % port, "--data-dir", os.path.join(p.dir, data or name)])
    base = "http://127.0.0.1:%d" % port
    wait_until(name + " ready", lambda: http_get(base + "/-/ready")[0] == 200)
    return base


def wait_held(p, base):
    """The block writer cut blocks and released WAL segments the sender still needs."""
    def held():
        p.check_alive()
        m = metrics(base)
        return m.get("vigil_tsdb_blocks_cut_total", 0) > 0 and \
            m.get("vigil_tsdb_wal_held_bytes", 0) > 0 and m
    return wait_until("segments held for the remote after block cuts", held, timeout=120)


def case_under_cap(p, t0):
    vm_port = free_port()
    base = start_collector(p, "c1", vm_port, None)
    total = post_all(base, t0)
    m = wait_held(p, base)
    print("case 1: %d samples shipped, %d blocks cut, %d bytes of WAL held, VM down"
          % (total, m["vigil_tsdb_blocks_cut_total"], m["vigil_tsdb_wal_held_bytes"]))
    t_end = t0 + NREQ * PER_REQ * 1000
    wait_until("the collector serves every sample", lambda: served(base, t_end) == total)
    entry = [e for e in p.procs if e[0] == "c1"][0]
    entry[1].send_signal(signal.SIGKILL)
    entry[1].wait(timeout=60)
    p.procs.remove(entry)
    entry[2].close()
    port = int(base.rsplit(":", 1)[1])
    base = start_collector(p, "c1b", vm_port, None, port, data="c1")
    replayed = [ln for ln in p.log("c1b").splitlines() if "WAL replayed" in ln]
    assert replayed and re.search(r"held_segments=[1-9]", replayed[0]), replayed
    n = served(base, t_end)
    assert n == total, "after the restart the collector serves %d of %d samples" % (n, total)
    print("case 1: restarted (-9) while held: %s; still serves all %d samples"
          % (re.search(r"held_segments=\d+", replayed[0]).group(0), total))
    vm = start_vm(p, "vm1", vm_port, os.path.join(p.dir, "vm1"))
    wait_until("VictoriaMetrics has every sample", lambda: p.check_alive() or
               vm_counts(vm)[1] == total, timeout=300)
    wait_until("the sender is past the held segments",
               lambda: metrics(base).get("vigil_tsdb_wal_held_bytes", 1) == 0, timeout=120)
    m = metrics(base)
    dropped = m.get('vigil_remote_write_dropped_samples_total{remote="vm",reason="wal_truncated"}')
    assert dropped == 0, m
    n, distinct = vm_counts(vm)
    assert (n, distinct) == (total, total), (n, distinct, total)
    print("case 1: VictoriaMetrics holds all %d samples exactly once, none dropped" % total)


def case_over_cap(p, t0):
    vm_port = free_port()
    base = start_collector(p, "c2", vm_port, "1MiB")
    total = post_all(base, t0)
    drop_key = 'vigil_remote_write_dropped_samples_total{remote="vm",reason="wal_truncated"}'
    wait_until("held segments deleted over the cap", lambda: p.check_alive() or
               metrics(base).get("vigil_tsdb_wal_hold_overflow_segments_total", 0) > 0 and
               metrics(base).get(drop_key, 0) > 0, timeout=120)
    # Let the block writer finish with everything it will cut (the head keeps
    # the newest 1.5 ranges), so the drop count is final before VM is back.
    last = [None]

    def settled():
        p.check_alive()
        m = metrics(base)
        cur = (m.get("vigil_tsdb_blocks_cut_total"), m.get(drop_key))
        same, last[0] = cur == last[0], cur
        return same
    wait_until("block cuts done", settled, timeout=120, interval=3)
    vm = start_vm(p, "vm2", vm_port, os.path.join(p.dir, "vm2"))
    m = metrics(base)
    dropped = int(m[drop_key])

    def arrived():
        p.check_alive()
        return metrics(base).get('vigil_remote_write_pending_samples{remote="vm"}', 1) == 0 and \
            vm_counts(vm)[1] + int(metrics(base)[drop_key]) == total
    wait_until("VictoriaMetrics has everything not dropped", arrived, timeout=300)
    m = metrics(base)
    assert int(m[drop_key]) == dropped, (dropped, m)
    n, distinct = vm_counts(vm)
    assert n == distinct, "duplicates in VictoriaMetrics: %d samples, %d distinct" % (n, distinct)
    assert 0 < dropped < total and distinct + dropped == total, (distinct, dropped, total)
    print("case 2: %d samples dropped over wal_max_hold_bytes (counted), %d arrived exactly once"
          % (dropped, distinct))


def main():
    t0 = (int(time.time()) // 60 - 90) * 60 * 1000  # 90 minutes ago, on a minute
    with Procs() as p:
        case_under_cap(p, t0)
        case_over_cap(p, t0)
        p.check_alive()
    print("test_remote_write_hold: OK")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
