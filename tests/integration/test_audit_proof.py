#!/usr/bin/env python3
"""test_audit_proof.py - issue 4's proof: not one audit record lost or stored
twice, over real processes, through rotations and crashes.

A writer appends 100,000 valid JSON audit lines (each with a unique sequence
number in session_id and in "seq"; some carry e-mail addresses and
Luhn-valid card numbers in values the email and credit_card presets must
remove) and 100 malformed ones (invalid JSON, missing field, invalid UTF-8,
over-long; 25 each, interleaved). Meanwhile, at points drawn from a seeded
random generator (the seed is printed; VIGIL_PROOF_SEED replays a run):
  - the live file is rotated by rename (dateext style: app.jsonl -> app.jsonl.rN,
    still matched by the agent's glob) and by copytruncate (copied to an
    excluded name, then truncated);
  - the agent is killed with SIGKILL three times and restarted (lines keep
    being written and a rotation may happen while it is down);
  - the collector is restarted once (SIGTERM or SIGKILL, drawn the same way;
    lines are written meanwhile).
The agent ships to the collector (mode "http": the embedded default; mode
"kafka": through the broker, the collector consuming the audit and the
audit dead-letter topics; a collector's copy of a bad batch put on the
dead-letter topic must be skipped). Once the store holds 100,000 records:
  - the query API (paged with the cursor) returns exactly 100,000 records,
    each sequence number exactly once, and so do the sealed segments read
    straight from disk (zstd frames decompressed with the zstd tool);
  - the dead-letter log holds exactly 100 entries, 25 per reason;
  - every 500th line's user_id is an e-mail address, which the agent
    redacts like any other field before it leaves the node; no raw e-mail
    address or card number from the input is anywhere under the collector's
    data dir (every file, segments decompressed), checked before and after
  - `vigilctl audit erase --subject` removed the 200 records of the opaque
    subject id every 500th line (offset 250) carries;
  - with everything sealed (audit.seal_after 1s; the records' hours are in
    the past) and the collector stopped, `vigilctl audit verify` exits 0
    (and shows the erasure), and after one flipped byte in a sealed segment
    it fails naming the segment.
The test fails when dedup is switched off in the store (checked by hand:
the kills land while a backlog of small batches is being shipped).

copytruncate: lines written between logrotate's copy and its truncate are
lost by copytruncate itself, for any tailer, and so is whatever the tailer
had not yet read when the file is truncated (the copy is not tailed: its
lines would be new source identities, i.e. duplicates). So the writer
pauses for the rotation and truncates only once everything written so far
has been stored, as logrotate's documented window requires of the
application; the expected count is then exact.
"""
import glob
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, http_get, kafka_bootstrap, wait_until  # noqa: E402
from ship_helpers import metric, stop, write_configs  # noqa: E402

TENANT = "proof"
VALID = int(os.environ.get("VIGIL_PROOF_LINES", "100000"))
BAD_EACH = 25  # per reason; 4 reasons
REASONS = ["invalid_json", "missing_field", "invalid_utf8", "too_long"]
CHUNK = 1000
CARDS = ["4111111111111111", "5500 0000 0000 0004", "3782-822463-10005", "6011000990139424"]
EMAIL = "jane.doe.%d@example.com"
SUBJECT = "subject-4711"  # user_id of every 500th line (offset 250): erased at the end


class Writer:
    """Appends lines to the live file; every 1000th valid line is followed by a bad one."""

    def __init__(self, path, hour0_ms, rng):
        self.path = path
        self.hour0 = hour0_ms
        self.rng = rng
        self.n = 0
        self.bad = []  # reasons, in order
        self.rotations = 0

    def ts(self, n):
        ms = self.hour0 + n * 60  # 100k lines span 100 minutes, all in past hours
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + ".%03dZ" % (ms % 1000)

    @staticmethod
    def user(n):
        if n % 500 == 0:
            return EMAIL % n  # an e-mail user_id: shipped redacted
        return SUBJECT if n % 500 == 250 else "user-%d" % (n % 97)

    def valid_line(self, n):
        rec = {"timestamp": self.ts(n), "user_id": self.user(n),
               "session_id": "sess-%06d" % n, "action": ["login", "read", "pay"][n % 3],
               "resource": "/accounts/%d" % (n % 1000), "result": "success" if n % 5 else "failure",
               "ip_address": "10.0.%d.%d" % (n % 250, n % 200), "seq": n}
        if n % 3 == 0:
            rec["details"] = {"contact": "mail " + EMAIL % n, "note": "ok"}
        if n % 7 == 0:
            rec["resource"] = "card " + CARDS[n % len(CARDS)]
        return (json.dumps(rec) + "\n").encode()

    def bad_line(self, k):
        why = REASONS[k % 4]
        email = (EMAIL % (900000 + k)).encode()
        card = CARDS[k % len(CARDS)].encode()
        if why == "invalid_json":
            line = b'{"timestamp": "2026-11-28T04:36:11Z", "user_id": "' + email + b'", "x": '
        elif why == "missing_field":
            line = b'{"timestamp": "2026-11-28T04:36:11Z", "card": "' + card + b'", "bad": %d}' % k
        elif why == "invalid_utf8":
            line = b'{"user_id": "\xff\xfe' + email + b'", "card": "' + card + b'", "bad": %d}' % k
        else:
            line = (b'{"user_id": "' + email + b'", "bad": %d, "pad": "' % k + b"a" * 5000 + b'"}')
        self.bad.append(why)
        return line + b"\n"

    def chunk(self):
        """Append up to CHUNK valid lines (one bad line after every 1000th)."""
        out = []
        for _ in range(min(CHUNK, VALID - self.n)):
            self.n += 1
            out.append(self.valid_line(self.n))
            if self.n % (VALID // (4 * BAD_EACH)) == 0 and len(self.bad) < 4 * BAD_EACH:
                out.append(self.bad_line(len(self.bad)))
        with open(self.path, "ab") as f:
            f.write(b"".join(out))

    def rename(self):
        self.rotations += 1
        os.rename(self.path, "%s.r%d" % (self.path, self.rotations))
        open(self.path, "ab").close()  # logrotate's "create"

    def copytruncate(self):
        self.rotations += 1
        shutil.copy(self.path, "%s.c%d.copy" % (self.path, self.rotations))
        with open(self.path, "r+b") as f:
            f.truncate(0)


class Pipeline:
    """The collector and the agent of one run, with their configs."""

    def __init__(self, procs, mode):
        self.p = procs
        self.data = os.path.join(procs.dir, "collector-data")
        self.logs = os.path.join(procs.dir, "logs")
        os.makedirs(self.logs)
        self.app = os.path.join(self.logs, "app.jsonl")
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.ncoll = self.nagent = 0
        self.kafka = None  # (bootstrap, dead-letter topic) in mode kafka
        self.dups = 0  # redelivered records the store absorbed, over all collector runs
        run = uuid.uuid4().hex[:8]
        inp, out = "", "  http: {url: '%s'}\n" % self.base
        if mode == "kafka":
            bs = kafka_bootstrap()
            topics = ("metrics_topic: vigil.metrics.proof-%s, audit_topic: vigil.audit.proof-%s, "
                      "audit_dlq_topic: vigil.audit.dlq.proof-%s" % (run, run, run))
            inp = "input:\n  kafka: {brokers: '%s', group_id: proof-%s, %s}\n" % (bs, run, topics)
            out = "  kafka: {brokers: '%s', %s}\n" % (bs, topics)
            self.kafka = (bs, "vigil.audit.dlq.proof-%s" % run)
        aport = free_port()
        self.cfg = write_configs(
            procs.dir,
            collector=inp + "audit:\n  seal_after: 1s\n  check_interval: 1s\n",
            agent=("agent: {listen: '127.0.0.1:%d', node: it-proof, tenant: %s, data_dir: '%s'}\n"
                   "scrape_configs: []\n"
                   "host_metrics: {enabled: false}\n"
                   "audit_logs:\n"
                   "  - paths: ['%s*']\n"
                   "    exclude: ['*.copy']\n"
                   "    tenant: %s\n"
                   "    read_from_head: true\n"
                   "    max_line_bytes: 4KiB\n"
                   "    redact: [{name: email}, {name: credit_card}]\n"
                   "output:\n%s"
                   "  batch_max_delay: 100ms\n"
                   "  batch_max_bytes: 16KiB\n"
                   % (aport, TENANT, os.path.join(procs.dir, "agent-data"), self.app, TENANT, out)))

    def start_collector(self):
        self.ncoll += 1
        self.coll = "collector%d" % self.ncoll
        self.p.start(self.coll, [os.path.join(BUILD, "vigil-collector"), "--config",
                                 self.cfg["collector"], "--listen", "127.0.0.1:%d" % self.port,
                                 "--data-dir", self.data])
        wait_until(self.coll + " ready", lambda: self.get("/-/ready")[0] == 200, timeout=120)

    def stop_collector(self, sig=signal.SIGTERM):
        self.dups += metric(self.base, "vigil_audit_records_total", outcome="duplicate")
        stop(self.p, self.coll, sig=sig)

    def start_agent(self):
        self.nagent += 1
        self.agent = "agent%d" % self.nagent
        self.p.start(self.agent, [os.path.join(BUILD, "vigil-agent"), "--config", self.cfg["agent"]])

    def kill_agent(self):
        stop(self.p, self.agent, sig=signal.SIGKILL)

    def get(self, path):
        try:
            return http_get(self.base + path, timeout=60)
        except OSError:
            return 0, b""

    def stats(self):
        code, body = self.get("/api/v1/audit/stats")
        return json.loads(body)["data"] if code == 200 else None

    def stored(self):
        st = self.stats()
        if not st:
            return -1
        return st["open_records"] + sum(st[t]["records"] for t in ("hot", "warm", "cold"))

    def dead_letters(self):
        code, body = self.get("/api/v1/audit/dlq?limit=100000&tenant=" + TENANT)
        assert code == 200, (code, body)
        return [json.loads(l) for l in body.decode().splitlines() if l]

    def query_all(self):
        out, cursor = [], None
        for _ in range(1000):
            p = {"tenant": TENANT, "limit": 10000}
            if cursor:
                p["cursor"] = cursor
            url = self.base + "/api/v1/audit/query?" + urllib.parse.urlencode(p)
            with urllib.request.urlopen(url, timeout=120) as r:
                body = r.read().decode()
                cursor = r.headers.get("X-Vigil-Next-Cursor")
            out += [json.loads(l) for l in body.splitlines() if l]
            if not cursor:
                return out
        raise AssertionError("query paging did not end")


def batch_copy_on_dlq_topic(procs, bootstrap, topic):
    """A collector's copy of a bad batch (it keeps the vigil-schema header) on
    the agents' dead-letter topic, as with the default topic names: skipped,
    not a dead letter (the count must stay 100)."""
    path = os.path.join(procs.dir, "batch-copy")
    with open(path, "wb") as f:
        f.write(b"\x28\xb5\x2f\xfd not a batch")
    subprocess.run(["kcat", "-P", "-b", bootstrap, "-t", topic, "-k", TENANT, "-H", "vigil-schema=1",
                    "-H", "vigil-dlq-reason=test", path], check=True, timeout=60)


def plan(rng):
    """The events as [(line, event)], sorted: each fires once that many valid
    lines are written. They are drawn from the first 64% of the lines, because
    an event writes up to 4 chunks itself and the 9 of them must all fit."""
    lo, hi = VALID // 50, VALID * 64 // 100
    events = []
    for e, k in (("kill_agent", 3), ("restart_collector", 1), ("rename", 3), ("copytruncate", 2)):
        events += [(n, e) for n in rng.sample(range(lo, hi), k)]
    return sorted(events)


def wait_caught_up(pl, w, what):
    """Everything written so far stored (records and dead letters)."""
    seen = {}

    def f():
        pl.p.check_alive()
        seen["records"], seen["dead letters"] = pl.stored(), len(pl.dead_letters())
        return seen["records"] >= w.n and seen["dead letters"] >= len(w.bad)
    try:
        wait_until(what, f, timeout=180, interval=0.5)
    except AssertionError as e:
        raise AssertionError("%s; stored %r of %d records and %d dead letters"
                             % (e, seen, w.n, len(w.bad))) from None


def kill_mid_flight(pl, w, rng):
    """SIGKILL the agent while it is shipping: a backlog of small batches is
    being stored when it dies, so some batch is likely stored but not yet
    checkpointed, and comes again after the restart (dedup's job)."""
    before = pl.stored()
    for _ in range(3):
        w.chunk()
    wait_until("agent shipping", lambda: pl.stored() > before, timeout=120, interval=0.002)
    time.sleep(rng.uniform(0, 0.05))
    pl.kill_agent()


def run_writer(pl, w, rng, events):
    events = list(events)
    while w.n < VALID:
        while events and events[0][0] <= w.n:
            e = events.pop(0)[1]
            print("line %d: %s" % (w.n, e), flush=True)
            if e == "kill_agent":
                kill_mid_flight(pl, w, rng)
                w.chunk()  # written while the agent is down
                if rng.random() < 0.5:
                    w.rename()  # and rotated while it is down
                pl.start_agent()
            elif e == "restart_collector":
                sig = rng.choice([signal.SIGTERM, signal.SIGKILL])
                print("  collector stopped with %s" % signal.Signals(sig).name, flush=True)
                pl.stop_collector(sig)
                w.chunk()
                pl.start_collector()
            elif e == "rename":
                w.rename()
            elif e == "copytruncate":
                wait_caught_up(pl, w, "caught up before copytruncate")
                w.copytruncate()
        w.chunk()
        time.sleep(0.02)
    assert not events, "events not run: %r" % events


def segment_lines(path):
    """The JSON lines of a sealed segment (segment.h: 64-byte header, meta, zstd frames)."""
    with open(path, "rb") as f:
        b = f.read()
    assert b[:8] == b"VGAUDSG1", path
    le = lambda o, n: int.from_bytes(b[o:o + n], "little")  # noqa: E731
    nrec, nframes, nkeys, ilen = le(16, 8), le(48, 4), le(52, 4), le(56, 4)
    base = 64 + nframes * 24 + nrec * 24 + nkeys * 8 + ilen
    raw = subprocess.run(["zstd", "-d", "-c", "-q"], input=b[base:], stdout=subprocess.PIPE,
                         check=True).stdout
    lines = [l for l in raw.split(b"\n") if l]
    assert len(lines) == nrec, (path, len(lines), nrec)
    return raw, lines


def segments(data):
    return sorted(glob.glob(os.path.join(data, "audit", "*", "*", "*.seg")))


def segment_records(path):
    return [json.loads(l) for l in segment_lines(path)[1]]


def seqs_of(recs, what, erased=False):
    """Each sequence number exactly once (without the subject's after the erasure)."""
    want = [n for n in range(1, VALID + 1) if not (erased and n % 500 == 250)]
    seen = {}
    for r in recs:
        n = json.loads(r["original"])["seq"]
        assert r["session_id"] == "sess-%06d" % n, (what, r)
        seen[n] = seen.get(n, 0) + 1
    twice = [n for n, k in seen.items() if k > 1]
    missing = [n for n in want if n not in seen]
    extra = len(seen) - len(want)
    assert not twice, "%s: %d sequence numbers stored more than once, e.g. %r" % (
        what, len(twice), twice[:10])
    assert not missing, "%s: %d sequence numbers missing, e.g. %r" % (what, len(missing), missing[:10])
    assert extra == 0 and len(recs) == len(want), (what, len(recs), len(want))


def check_no_secrets(data, w):
    """No raw e-mail or card number in any file under data (segments decompressed)."""
    needles = [b"@example.com"] + [c.encode() for c in CARDS]
    nfiles = 0
    for root, _, files in os.walk(data):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as f:
                texts = [f.read()]
            if name.endswith(".seg"):
                texts.append(segment_lines(path)[0])
            nfiles += 1
            for t in texts:
                for s in needles:
                    assert s not in t, "raw %r found in %s" % (s, path)
    return nfiles


def verify(data, *extra):
    r = subprocess.run([os.path.join(BUILD, "vigilctl"), "audit", "verify", "--data-dir", data]
                       + list(extra), capture_output=True, text=True, timeout=300)
    return r.returncode, r.stdout + r.stderr


def main(mode):
    seed = int(os.environ.get("VIGIL_PROOF_SEED") or random.SystemRandom().randrange(1 << 30))
    print("audit proof (%s): seed %d (VIGIL_PROOF_SEED=%d replays it)" % (mode, seed, seed),
          flush=True)
    rng = random.Random(seed)
    events = plan(rng)
    now_ms = int(time.time() * 1000)
    hour0 = now_ms - now_ms % 3600000 - 4 * 3600000  # the records' hours are all over
    t0 = time.time()
    with Procs() as procs:
        pl = Pipeline(procs, mode)
        w = Writer(pl.app, hour0, rng)
        pl.start_collector()
        if pl.kafka:
            batch_copy_on_dlq_topic(procs, *pl.kafka)
        pl.start_agent()
        run_writer(pl, w, rng, events)
        print("writer done after %.1fs: %d valid, %d bad, %d rotations"
              % (time.time() - t0, w.n, len(w.bad), w.rotations), flush=True)
        wait_caught_up(pl, w, "all %d records and %d dead letters stored" % (w.n, len(w.bad)))
        print("stored after %.1fs" % (time.time() - t0), flush=True)

        recs = pl.query_all()
        seqs_of(recs, "query")
        dead = pl.dead_letters()
        assert len(dead) == len(w.bad) == 4 * BAD_EACH, (len(dead), len(w.bad))
        assert sorted(d["reason"] for d in dead) == sorted(w.bad), sorted(d["reason"] for d in dead)

        def all_sealed():
            st = pl.stats()
            return st["open_records"] == 0 and st["hot"]["records"] == VALID
        wait_until("everything sealed", all_sealed, timeout=120, interval=0.5)
        stop(procs, pl.agent)
        pl.stop_collector()

        segs = segments(pl.data)
        seqs_of(sum((segment_records(s) for s in segs), []), "segments on disk")
        check_no_secrets(pl.data, w)  # redacted at the source, not by the erasure
        emails = [r for r in recs if json.loads(r["original"])["seq"] % 500 == 0]
        assert len(emails) == VALID // 500 and all(
            "@" not in r["user_id"] and r["user_id"] for r in emails), emails[:3]
        subj = [r for r in recs if r["user_id"] == SUBJECT]
        assert len(subj) == VALID // 500, "the subject's user_id was not kept: %d" % len(subj)
        # GDPR erasure by the user_id; then nothing of it is left
        r = subprocess.run([os.path.join(BUILD, "vigilctl"), "audit", "erase", "--subject", SUBJECT,
                            "--tenant", TENANT, "--data-dir", pl.data],
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0 and "erased %d records" % len(subj) in r.stdout, r.stdout + r.stderr
        segs = segments(pl.data)
        seqs_of(sum((segment_records(s) for s in segs), []), "segments after erasure", erased=True)
        nfiles = check_no_secrets(pl.data, w)

        rc, out = verify(pl.data)
        assert rc == 0, out
        assert "erasure" in out, out
        if pl.kafka:
            logs = "".join(procs.log("collector%d" % i) for i in range(1, pl.ncoll + 1))
            assert "skipped a copied bad batch" in logs, "the batch copy was not recognised"

        seg = rng.choice(segs)
        with open(seg, "r+b") as f:
            f.seek(-20, os.SEEK_END)
            c = f.read(1)
            f.seek(-20, os.SEEK_END)
            f.write(bytes([c[0] ^ 0x01]))
        rc, out = verify(pl.data)
        assert rc != 0, "verify passed after a flipped byte in %s:\n%s" % (seg, out)
        assert os.path.basename(seg) in out, out
        print("audit proof (%s): %d records once each (query and %d segments), %d redeliveries "
              "absorbed, %d dead letters, %d files clean of secrets, verify ok then caught the "
              "flipped byte; %.1fs" % (mode, len(recs), len(segs), pl.dups, len(dead), nfiles,
                                       time.time() - t0))
    print("1 passed, 0 failed")


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "http")
