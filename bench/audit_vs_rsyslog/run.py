#!/usr/bin/env python3
"""audit_vs_rsyslog - vigil-agent against rsyslog shipping one JSON audit file to Kafka.

Why this bench: the audit path's goal (issue 4) is at most half of rsyslog's
CPU per line while doing more work. Both read the same generated file of
JSON audit lines (the seven required fields, realistic values, some emails,
card numbers and bearer tokens) from the start and produce it to the shared
Kafka broker, each to its own fresh single-partition topic:

  - vigil-agent: an audit_logs input (read_from_head) that validates every
    line (UTF-8, JSON, required fields and types, timestamp), redacts with
    the five presets, and ships zstd-compressed protobuf batches (key =
    tenant); done when vigil_agent_audit_records_total on its /metrics
    reaches the line count (records acknowledged by the broker);
  - rsyslogd (unprivileged, foreground, own config and work directory):
    imfile (readMode 0, freshStartTail off) + mmjsonparse + omkafka, one
    message per line with the parsed JSON re-serialised ($!all-json), key =
    tenant, librdkafka compression as --rsyslog-codec says (zstd by default,
    so both sides put compressed bytes on the wire); done when the topic's
    end offset reaches the line count. rsyslog neither validates nor
    redacts: that is the point of the comparison.

Afterwards the start of each topic is searched for the planted secrets (Vigil's
first batch, decompressed; rsyslog's first 2000 messages), to show what each
one shipped. The two run one after the other (not at the same time), so neither steals
the other's cores. CPU is utime + stime from /proc/PID/stat at the moment
the last line was produced, startup included; peak RSS is VmHWM. Run it
under flock /tmp/vigil-bench.lock.

  bench/audit_vs_rsyslog/run.py [--lines 1000000] [--rsyslog-codec zstd|none] [--only vigil|rsyslog]
"""
import argparse
import os
import random
import re
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import (BUILD, ROOT, cpu_seconds, free_port, machine, peak_rss_bytes,  # noqa: E402
                    start, stop, wait_port)

sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from wire import kafka_create_topic  # noqa: E402

PRESETS = ("email", "credit_card", "bearer_token", "aws_access_key", "password_field")
ACTIONS = ("login", "logout", "read", "update", "delete", "export", "grant_role", "password_change",
           "download", "share")
RESULTS = ("success",) * 8 + ("failure", "denied")
AGENTS = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0",
          "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_1) AppleWebKit/605.1.15 Safari/605.1.15",
          "curl/8.4.0", "python-requests/2.31.0", "vigilctl/1.0")
NAMES = ("jane.doe", "john.smith", "a.kowalski", "m.garcia", "li.wei", "o.nakamura", "ops-team")
DOMAINS = ("example.com", "corp.example.org", "mail.example.net")
# what the generator plants and the presets must catch: e-mails, cards, bearer tokens
SECRET = re.compile(rb"@(?:example\.com|corp\.example\.org|mail\.example\.net)|Bearer [0-9a-f]{32}"
                    rb"|(?<![0-9])4[0-9]{3}( ?)[0-9]{4}\1[0-9]{4}\1[0-9]{4}(?![0-9])")


def luhn_card(rng):
    digits = [4] + [rng.randrange(10) for _ in range(14)]
    total = 0
    for i, d in enumerate(reversed(digits)):  # the check digit goes right of these
        if i % 2 == 0:
            d *= 2
            d -= 9 if d > 9 else 0
        total += d
    digits.append((10 - total % 10) % 10)
    s = "".join(map(str, digits))
    return " ".join(s[i:i + 4] for i in range(0, 16, 4)) if rng.random() < 0.5 else s


def audit_line(rng, i, t0):
    ts = t0 + i * 7 + rng.randrange(7)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts // 1000)) + ".%03dZ" % (ts % 1000)
    user = rng.randrange(20000)
    details = {"request_id": "%032x" % rng.getrandbits(128), "duration_ms": rng.randrange(1, 900),
               "bytes": rng.randrange(0, 1 << 20)}
    r = rng.random()
    if r < 0.05:
        details["notify"] = "%s@%s" % (rng.choice(NAMES), rng.choice(DOMAINS))
    elif r < 0.07:
        details["payment"] = "card %s charged" % luhn_card(rng)
    elif r < 0.08:
        details["authorization"] = "Bearer %032x" % rng.getrandbits(128)
    elif r < 0.085:
        details["api_key"] = "%024x" % rng.getrandbits(96)
    rec = ('{"timestamp":"%s","user_id":"u%06d","session_id":"s-%016x","action":"%s",'
           '"resource":"/api/v1/projects/%d/documents/%d","result":"%s","ip_address":"10.%d.%d.%d",'
           '"user_agent":"%s","tenant":"bench","details":{%s}}'
           % (stamp, user, rng.getrandbits(64), rng.choice(ACTIONS), rng.randrange(500),
              rng.randrange(100000), rng.choice(RESULTS), rng.randrange(256), rng.randrange(256),
              rng.randrange(1, 255), rng.choice(AGENTS),
              ",".join('"%s":%s' % (k, ('"%s"' % v) if isinstance(v, str) else v)
                       for k, v in details.items())))
    return rec


def write_input(path, n):
    rng = random.Random(4)
    t0 = 1795000000000
    with open(path, "w") as f:
        for i in range(n):
            f.write(audit_line(rng, i, t0) + "\n")
    return os.path.getsize(path)


def kafka_delete_topics(bootstrap, topics):
    """DeleteTopics v1, so a run leaves nothing on the shared broker; errors are ignored."""
    host, port = bootstrap.split(",")[0].rsplit(":", 1)
    body = struct.pack(">i", len(topics))
    for t in topics:
        body += struct.pack(">h", len(t)) + t.encode()
    body += struct.pack(">i", 30000)
    req = struct.pack(">hhi", 20, 1, 1) + struct.pack(">h", 11) + b"vigil-bench" + body
    try:
        with socket.create_connection((host, int(port)), timeout=35) as s:
            s.sendall(struct.pack(">i", len(req)) + req)
            s.recv(4096)
    except OSError as e:
        print("warning: could not delete topics %s: %s" % (topics, e), file=sys.stderr)


def end_offset(bootstrap, topic):
    out = subprocess.run(["kcat", "-Q", "-b", bootstrap, "-t", "%s:0:-1" % topic],
                         capture_output=True, text=True, timeout=30)
    m = re.search(r"\[0\] offset (\d+)", out.stdout)
    return int(m.group(1)) if m else 0


def sample_secrets(bootstrap, topic, zstd_batches):
    """Secrets left in the start of a topic: Vigil's first batch (a zstd frame) or
    rsyslog's first 2000 messages. Returns (secrets found, lines looked at)."""
    fmt = ["-c", "1", "-f", "%s"] if zstd_batches else ["-c", "2000", "-f", "%s\\n"]
    out = subprocess.run(["kcat", "-C", "-b", bootstrap, "-t", topic, "-p", "0", "-o", "beginning",
                          "-e", "-q"] + fmt, capture_output=True, timeout=60).stdout
    if zstd_batches:
        out = subprocess.run(["zstd", "-dc"], input=out, capture_output=True, timeout=60).stdout
        return len(SECRET.findall(out)), out.count(b'"timestamp"')
    return len(SECRET.findall(out)), out.count(b"\n")


def scrape_metric(port, pattern):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=10) as r:
        text = r.read().decode()
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if re.match(pattern, line))


def measure(proc, done, total, timeout):
    """Poll done() until it reaches total; CPU and peak RSS of proc at that moment."""
    deadline = time.monotonic() + timeout
    t0 = time.monotonic()
    while True:
        if proc.poll() is not None:
            raise RuntimeError("the process exited with %s before shipping every line" % proc.returncode)
        n = done()
        if n >= total:
            return {"cpu": cpu_seconds(proc.pid), "rss": peak_rss_bytes(proc.pid),
                    "wall": time.monotonic() - t0, "lines": n}
        if time.monotonic() > deadline:
            raise RuntimeError("only %d of %d lines shipped after %ds" % (n, total, timeout))
        time.sleep(0.25)


def run_vigil(d, inp, bootstrap, topic, n, timeout):
    port = free_port()
    redact = ", ".join("{name: %s}" % p for p in PRESETS)
    with open(os.path.join(d, "vigil.yml"), "w") as f:
        f.write("agent: {listen: '127.0.0.1:%d', node: bench, tenant: bench, data_dir: '%s/vigil'}\n"
                "audit_logs:\n"
                "  - paths: ['%s']\n"
                "    read_from_head: true\n"
                "    required_fields: [timestamp, user_id, session_id, action, resource, result, ip_address]\n"
                "    redact: [%s]\n"
                "output:\n"
                "  kafka: {brokers: '%s', audit_topic: %s, audit_dlq_topic: %s.dlq}\n"
                % (port, d, inp, redact, bootstrap, topic, topic))
    p = start([os.path.join(BUILD, "vigil-agent"), "--config", os.path.join(d, "vigil.yml"),
               "--log-level", "warn"], os.path.join(d, "vigil.log"))
    try:
        wait_port(port)
        res = measure(p, lambda: scrape_metric(port, r"^vigil_agent_audit_records_total"), n, timeout)
        res["dlq"] = scrape_metric(port, r"^vigil_agent_audit_dlq_total")
        res["messages"] = end_offset(bootstrap, topic)
        res["version"] = "vigil-agent " + git_rev()
        res["secrets"] = sample_secrets(bootstrap, topic, True)
    finally:
        stop(p)
    return res


def rsyslog_conf(d, inp, bootstrap, topic, codec):
    return """global(workDirectory="%(d)s/rsyslog" maxMessageSize="64k")
module(load="imfile" mode="inotify")
module(load="mmjsonparse")
module(load="omkafka")
template(name="auditjson" type="list") { property(name="$!all-json") }
input(type="imfile" file="%(inp)s" tag="audit" readMode="0" freshStartTail="off" ruleset="audit")
ruleset(name="audit") {
  action(type="mmjsonparse" useRawMsg="on" cookie="")
  action(type="omkafka" broker=["%(b)s"] topic="%(t)s" key="bench" template="auditjson"
         confParam=["compression.codec=%(c)s"])
}
""" % {"d": d, "inp": inp, "b": bootstrap, "t": topic, "c": codec}


def run_rsyslog(d, inp, bootstrap, topic, n, codec, timeout):
    os.makedirs(os.path.join(d, "rsyslog"), exist_ok=True)
    conf = os.path.join(d, "rsyslog.conf")
    with open(conf, "w") as f:
        f.write(rsyslog_conf(d, inp, bootstrap, topic, codec))
    p = start(["rsyslogd", "-n", "-f", conf, "-i", os.path.join(d, "rsyslog.pid")],
              os.path.join(d, "rsyslog.log"))
    try:
        res = measure(p, lambda: end_offset(bootstrap, topic), n, timeout)
        res["messages"] = res["lines"]
        res["secrets"] = sample_secrets(bootstrap, topic, False)
        res["version"] = re.sub(r"\s+", " ", subprocess.run(
            ["rsyslogd", "-v"], capture_output=True, text=True).stdout.split("compiled")[0].strip())
    finally:
        stop(p)
    return res


def git_rev():
    out = subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    return out.stdout.strip() or "?"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--lines", type=int, default=1000000)
    ap.add_argument("--rsyslog-codec", default="zstd", help="librdkafka compression.codec for omkafka")
    ap.add_argument("--only", choices=("vigil", "rsyslog"), help="run one side (profiling)")
    ap.add_argument("--timeout", type=int, default=1800, help="seconds each side may take")
    args = ap.parse_args()
    bootstrap = os.environ.get("VIGIL_KAFKA_BOOTSTRAP")
    if not bootstrap:
        sys.exit("set VIGIL_KAFKA_BOOTSTRAP=$(bash scripts/kafka.sh start)")
    if not shutil.which("rsyslogd") or not shutil.which("kcat"):
        sys.exit("needs rsyslogd (rsyslog, rsyslog-kafka) and kcat (scripts/deps.sh)")
    tag = "%d.%d" % (os.getpid(), int(time.time()))
    topics = {"vigil": "bench.audit.vigil." + tag, "rsyslog": "bench.audit.rsyslog." + tag}
    sides = [args.only] if args.only else ["vigil", "rsyslog"]
    res = {}
    with tempfile.TemporaryDirectory(prefix="vigil-bench-audit-") as d:
        inp = os.path.join(d, "audit.jsonl")
        size = write_input(inp, args.lines)
        try:
            for k in sides:
                kafka_create_topic(bootstrap, topics[k], 1)
                if k == "vigil":
                    res[k] = run_vigil(d, inp, bootstrap, topics[k], args.lines, args.timeout)
                else:
                    res[k] = run_rsyslog(d, inp, bootstrap, topics[k], args.lines,
                                         args.rsyslog_codec, args.timeout)
        finally:
            kafka_delete_topics(bootstrap, list(topics.values()))
    print("audit_vs_rsyslog: %d lines (%.0f MiB, avg %d B), Kafka %s, %s"
          % (args.lines, size / 2**20, size // args.lines, bootstrap, machine()))
    print("vigil-agent: validates + redacts (%s), zstd protobuf batches; rsyslog: imfile + "
          "mmjsonparse + omkafka (codec %s), no validation, no redaction"
          % (", ".join(PRESETS), args.rsyslog_codec))
    print("%-12s %16s %12s %10s %8s %10s  %s" % ("", "CPU-s/Mlines", "peak RSS MiB", "CPU-s", "wall s",
                                              "messages", "version"))
    for k in sides:
        r = res[k]
        print("%-12s %16.3f %12.1f %10.2f %8.1f %10d  %s"
              % (k if k == "rsyslog" else "vigil-agent", r["cpu"] / (args.lines / 1e6),
                 r["rss"] / 2**20, r["cpu"], r["wall"], r["messages"], r["version"]))
    for k in sides:
        print("%s: %d raw e-mails, cards or bearer tokens in the first %d lines on its topic"
              % (k if k == "rsyslog" else "vigil-agent", res[k]["secrets"][0], res[k]["secrets"][1]))
    if "vigil" in res and res["vigil"]["dlq"]:
        print("warning: vigil dead-lettered %d lines" % res["vigil"]["dlq"])
    if len(res) == 2:
        v, s = res["vigil"], res["rsyslog"]
        print("ratio vigil/rsyslog: CPU per line %.2f (goal <= 0.50), peak RSS %.2f"
              % (v["cpu"] / s["cpu"], v["rss"] / s["rss"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
