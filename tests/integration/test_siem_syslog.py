#!/usr/bin/env python3
"""test_siem_syslog.py - the collector's syslog SIEM output against a real rsyslogd.

A real /usr/sbin/rsyslogd runs unprivileged in the foreground (-n, its own
config, work directory and pidfile) with imtcp on a free loopback port
(octet-counted framing is on by default) and writes every message twice: the
raw message as received, and the fields rsyslog's own RFC 5424 parser found.
The collector has one `siem:` output of type syslog pointing at it.

1. N audit records go in over HTTP ingest; poll until rsyslog's file holds
   all N; parse each line as RFC 5424 and check PRI, timestamp, hostname,
   APP-NAME, PROCID, MSGID, the vigil@32473 structured data (escaping
   included) and BOM + the original JSON; rsyslog's parse must agree.
2. rsyslogd is stopped (SIGTERM), M more records go in, rsyslogd starts again
   on the same port; poll until every one of the N+M is present (at least
   once: duplicates are tolerated, a missing record is not).

Modes "output" and "output-tls" drive the same output code through
siem_syslog_send (a minimal forwarder reading stored lines from stdin)
instead of the collector, so the output is proven against rsyslogd on its
own; "plain" and "tls" go through the collector's `siem:` forwarder.

"tls" modes: the same over RFC 5425 (rsyslog's ossl driver) with a CA and
server/client certificates made here with the openssl CLI; rsyslog requires a
client certificate signed by that CA, and the collector verifies the server
against the CA and the name "localhost".
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, http_get, wait_until  # noqa: E402
import wire  # noqa: E402
from test_audit_store import start_collector  # noqa: E402

RSYSLOGD = "/usr/sbin/rsyslogd"
TENANT = "acme"
FACILITY = 13
N, M = 300, 200
BOM = "\ufeff"
# A user id that needs RFC 5424 escaping ('"', '\', ']') and some multibyte UTF-8.
ODD_USER = 'o"d\\d]é€'


def records(first, count, now_ms):
    """count records with unique (file_id, offset); returns (wire records, expected dicts)."""
    recs, expect = [], []
    for n in range(first, first + count):
        e = dict(ts=now_ms - 60000 + n, user=ODD_USER if n % 10 == 3 else "u%d" % (n % 7),
                 action="login" if n % 2 else "read",
                 result="failure" if n % 5 == 0 else "success", file_id="f%d" % (n % 3),
                 offset=n * 100, session_id="s%d" % n, resource="/r/%d" % n,
                 ip_address="10.0.0.%d" % (n % 250))
        e["original"] = json.dumps({"n": n, "user_id": e["user"], "note": "Grüße"},
                                   ensure_ascii=False)
        expect.append(e)
        recs.append(wire.audit_record(e["ts"], e["user"], e["action"], e["result"], e["file_id"],
                                      e["offset"], original=e["original"],
                                      session_id=e["session_id"], resource=e["resource"],
                                      ip_address=e["ip_address"]))
    return recs, expect


def ship(base, recs, seq0):
    for i in range(0, len(recs), 50):
        body = wire.audit_envelope("it-agent", TENANT, seq0 + i // 50, recs[i:i + 50])
        req = urllib.request.Request(base + "/ingest/v1/batch", data=body, method="POST",
                                     headers={"Content-Encoding": "zstd"})
        with urllib.request.urlopen(req, timeout=30) as r:
            assert r.status == 204, r.status


# ---- RFC 5424 parsing (strict enough to catch a malformed message) ----

HEADER = re.compile(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) ")


def parse_sd(s, i):
    """Parse one or more SD-ELEMENTs starting at s[i]; return (dict of dicts, next index)."""
    out = {}
    while i < len(s) and s[i] == "[":
        m = re.compile(r"([^ =\]\"]{1,32})").match(s, i + 1)
        assert m, "bad SD-ID at %r" % s[i:i + 40]
        sd_id, params, i = m.group(1), {}, m.end()
        while s[i] == " ":
            m = re.compile(r"([^ =\]\"]{1,32})=\"").match(s, i + 1)
            assert m, "bad PARAM-NAME at %r" % s[i:i + 40]
            name, i, val = m.group(1), m.end(), []
            while s[i] != '"':
                if s[i] == "\\" and s[i + 1] in '"\\]':
                    i += 1
                assert s[i] != "]" or s[i - 1] == "\\", "unescaped ] in %r" % name
                val.append(s[i])
                i += 1
            params[name] = "".join(val)
            i += 1
        assert s[i] == "]", "SD-ELEMENT not closed at %r" % s[i:i + 40]
        out[sd_id] = params
        i += 1
    return out, i


def parse_5424(line):
    m = HEADER.match(line)
    assert m, "not RFC 5424: %r" % line[:120]
    pri, ts, host, app, procid, msgid = m.groups()
    sd, i = parse_sd(line, m.end())
    msg = line[i + 1:] if i < len(line) else None
    if msg is not None:
        assert line[i] == " ", "no SP before MSG in %r" % line[:120]
    return dict(pri=int(pri), ts=ts, host=host, app=app, procid=procid, msgid=msgid, sd=sd,
                msg=msg)


def rfc3339_ms(ts_ms):
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + ".%03dZ" % (ts_ms % 1000)


def check_message(got, e, hostname):
    sev = 4 if e["result"] == "failure" else 6
    assert got["pri"] == FACILITY * 8 + sev, (got["pri"], e)
    assert got["ts"] == rfc3339_ms(e["ts"]), (got["ts"], e)
    assert got["host"] == hostname, got["host"]
    assert (got["app"], got["procid"], got["msgid"]) == ("vigil", "-", "audit"), got
    sd = got["sd"]["vigil@32473"]
    want = dict(tenant=TENANT, user_id=e["user"], session_id=e["session_id"],
                action=e["action"], resource=e["resource"], result=e["result"],
                ip_address=e["ip_address"], file_id=e["file_id"], offset=str(e["offset"]))
    assert sd == want, (sd, want)
    assert got["msg"] == BOM + e["original"], (got["msg"], e["original"])


def read_lines(path):
    try:
        with open(path, encoding="utf-8") as f:
            return [l.rstrip("\n") for l in f if l.strip()]
    except FileNotFoundError:
        return []


def received(path):
    """{(file_id, offset): parsed message} from rsyslog's raw file."""
    out = {}
    for line in read_lines(path):
        g = parse_5424(line)
        sd = g["sd"].get("vigil@32473", {})
        out[(sd.get("file_id"), int(sd.get("offset", -1)))] = g
    return out


# ---- rsyslogd ----

def make_certs(d):
    """A CA, a server certificate for localhost/127.0.0.1, a client certificate."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
        d + "/ca.pem", "-days", "2", "-subj", "/CN=vigil-it-ca")
    with open(d + "/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    for who, cn in (("srv", "localhost"), ("cli", "vigil-collector")):
        run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "%s/%s.key" % (d, who), "-out",
            "%s/%s.csr" % (d, who), "-subj", "/CN=" + cn)
        run("x509", "-req", "-in", "%s/%s.csr" % (d, who), "-CA", d + "/ca.pem", "-CAkey",
            d + "/ca.key", "-CAcreateserial", "-out", "%s/%s.pem" % (d, who), "-days", "2",
            "-extfile", d + "/ext.cnf")


def rsyslog_conf(d, port, tls):
    g = 'global(workDirectory="%s/work" maxMessageSize="64k"' % d
    if tls:
        g += (' DefaultNetstreamDriverCAFile="{0}/ca.pem" DefaultNetstreamDriverCertFile='
              '"{0}/srv.pem" DefaultNetstreamDriverKeyFile="{0}/srv.key"').format(d)
        mod = ('module(load="imtcp" StreamDriver.Name="ossl" StreamDriver.Mode="1" '
               'StreamDriver.AuthMode="x509/certvalid")')
    else:
        mod = 'module(load="imtcp")'
    return "\n".join([
        g + ")",
        mod,
        'input(type="imtcp" address="127.0.0.1" port="%d")' % port,
        'template(name="raw" type="string" string="%rawmsg%\\n")',
        'template(name="parsed" type="string" string="%pri%|%timereported:::date-rfc3339%|'
        '%hostname%|%app-name%|%procid%|%msgid%|%structured-data%\\n")',
        'action(type="omfile" file="%s/raw.log" template="raw")' % d,
        'action(type="omfile" file="%s/parsed.log" template="parsed")' % d,
        ""])


def start_rsyslogd(p, name, d, port):
    proc = p.start(name, [RSYSLOGD, "-n", "-f", d + "/rsyslog.conf", "-i", d + "/rsyslogd.pid"])

    def listening():
        if proc.poll() is not None:
            raise AssertionError("%s exited with %s:\n%s" % (name, proc.returncode, p.log(name)))
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    wait_until(name + " listening", listening, timeout=60)
    return proc


def stop(proc, what):
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0, what + " did not exit cleanly"


# ---- collector ----

def collector_conf(d, port, tls):
    out = ("audit:\n  seal_after: 1s\n  check_interval: 1s\n"
           "siem:\n  - type: syslog\n    name: rsyslog\n    address: 127.0.0.1:%d\n"
           "    timeout: 5s\n    batch_records: 64\n" % port)
    if tls:
        out += ("    tls: {ca_file: %s/ca.pem, server_name: localhost, cert_file: %s/cli.pem, "
                "key_file: %s/cli.key}\n" % (d, d, d))
    return out


def metric(base, name, labels):
    _, body = http_get(base + "/metrics")
    total = 0.0
    for line in body.decode().splitlines():
        if line.startswith(name + "{") and labels in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class CollectorSender:
    """Records go in over HTTP ingest; the collector's forwarder sends them."""

    def __init__(self, p, d, rport, tls):
        cfg = os.path.join(p.dir, "collector.yml")
        with open(cfg, "w") as f:
            f.write(collector_conf(d, rport, tls))
        self.base = start_collector(p, "collector", cfg, free_port(), os.path.join(p.dir, "data"))
        self.seq = 1

    def ship(self, recs, expect):
        ship(self.base, recs, self.seq)
        self.seq += 1000

    def failures(self):
        return metric(self.base, "vigil_siem_send_failures_total", 'output="rsyslog"')

    def finish(self):
        pass


class OutputSender:
    """siem_syslog_send: the same output code driven from stdin by a minimal
    forwarder (one long-lived output, failed batches resent)."""

    def __init__(self, p, d, rport, tls):
        self.p, self.expect_lines = p, []
        argv = [os.path.join(BUILD, "tests", "integration", "siem_syslog_send"),
                "--address", "127.0.0.1:%d" % rport, "--batch", "64", "--timeout-ms", "5000"]
        if tls:
            argv += ["--tls", "--ca-file", d + "/ca.pem", "--server-name", "localhost",
                     "--cert-file", d + "/cli.pem", "--key-file", d + "/cli.key"]
        self.log = open(os.path.join(p.dir, "sender.log"), "wb")
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.log)

    def ship(self, recs, expect):
        for e in expect:  # the line the audit store keeps (store.c record_line)
            o = dict(ts_ms=e["ts"], tenant=TENANT, user_id=e["user"], session_id=e["session_id"],
                     action=e["action"], resource=e["resource"], result=e["result"],
                     ip_address=e["ip_address"], file_id=e["file_id"], offset=e["offset"],
                     original=e["original"])
            self.proc.stdin.write(("%s\t%d\t%s\n" % (TENANT, e["ts"], json.dumps(o))).encode())
        self.proc.stdin.flush()

    def failures(self):
        return self.p.log("sender").count("send failed")

    def finish(self):
        self.proc.stdin.close()
        out = self.proc.stdout.read().decode()
        assert self.proc.wait(timeout=120) == 0, self.p.log("sender")
        print(out.strip())


def main(mode):
    tls = mode.endswith("tls")
    hostname = socket.gethostname()
    with Procs() as p:
        d = os.path.join(p.dir, "rsyslog")
        os.makedirs(d + "/work")
        if tls:
            make_certs(d)
        rport = free_port()
        with open(d + "/rsyslog.conf", "w") as f:
            f.write(rsyslog_conf(d, rport, tls))
        rs = start_rsyslogd(p, "rsyslogd", d, rport)
        via_output = mode.startswith("output")
        sender = (OutputSender if via_output else CollectorSender)(p, d, rport, tls)
        try:
            run(p, d, rs, rport, sender, hostname)
        finally:
            if via_output:
                if sender.proc.poll() is None:
                    sender.proc.kill()
                    sender.proc.wait()
                sender.log.close()


def run(p, d, rs, rport, sender, hostname):
    now = int(time.time() * 1000)
    recs, expect = records(0, N, now)
    sender.ship(recs, expect)
    keys = {(e["file_id"], e["offset"]): e for e in expect}
    raw = d + "/raw.log"
    wait_until("rsyslog has all %d records" % N,
               lambda: set(keys) <= set(received(raw)), timeout=120)
    got = received(raw)
    for k, e in keys.items():
        check_message(got[k], e, hostname)
    # rsyslog's own RFC 5424 parser saw the same header and structured data
    parsed = read_lines(d + "/parsed.log")
    assert len(parsed) >= N, len(parsed)
    for line in read_lines(raw):
        g = parse_5424(line)
        sd_raw = line[line.index("[vigil@32473"):line.index("] " + BOM) + 1]
        want = "%d|%s|%s|vigil|-|audit|%s" % (g["pri"], g["ts"], hostname, sd_raw)
        assert want in parsed, (want, parsed[:2])

    # receiver down: more records arrive, then the receiver comes back
    stop(rs, "rsyslogd")
    recs, expect2 = records(N, M, now)
    sender.ship(recs, expect2)
    wait_until("the output noticed the receiver is down", lambda: sender.failures() > 0,
               timeout=120)
    start_rsyslogd(p, "rsyslogd2", d, rport)
    keys.update({(e["file_id"], e["offset"]): e for e in expect2})
    wait_until("rsyslog has all %d records after its restart" % (N + M),
               lambda: set(keys) <= set(received(raw)), timeout=240, interval=1.0)
    sender.finish()
    got = received(raw)
    for e in expect2:
        check_message(got[(e["file_id"], e["offset"])], e, hostname)
    extra = set(got) - set(keys)
    assert not extra, "records nobody sent: %r" % sorted(extra)[:5]
    dups = len(read_lines(raw)) - len(keys)
    print("ok: %d records, %d duplicates after the restart" % (len(keys), dups))


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "plain")
