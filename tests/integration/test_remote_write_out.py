#!/usr/bin/env python3
"""The collector's remote_write sender against real receivers.

A collector with two remote_write entries, a real VictoriaMetrics
(/api/v1/write) and a real Prometheus (--web.enable-remote-write-receiver),
gets samples through its own remote-write receiver for two tenants
("default" and "acme"). Both receivers must end up with every sample.
Then VictoriaMetrics is stopped, more samples are shipped, it is started
again on the same data: it must end up with everything, since the sender
reads the collector's WAL and only moves its cursor after a 2xx. The
collector's own counters must show the retries and no failed sample.
Then VictoriaMetrics goes down again and the collector is killed (-9) with
samples still owed; the restarted collector resumes from its cursor file.
A third entry points at a recording receiver that answers 503 then 400
then 204: the headers of remote-write 1.0, the configured headers and
Authorization, X-Scope-OrgID only for the non-default tenant, and the 503
counted as retried, the 400 as failed (not retried). A fourth goes to a
VictoriaMetrics serving TLS with a certificate for vm.test only, reached at
127.0.0.1 with tls_config.server_name: vm.test.
"""
import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Procs, api, free_port, http_get, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402
import wire  # noqa: E402

BUILD = os.environ.get("VIGIL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))
SERIES = [("default", {"__name__": "rwout_a", "job": "it", "i": str(i)}) for i in range(3)] + \
         [("acme", {"__name__": "rwout_b", "job": "it", "i": "0"})]
PER_PHASE = 40


def post_samples(base, t0_ms, phase):
    """PER_PHASE samples per series, one second apart, value = phase*1000 + k."""
    for tenant in ("default", "acme"):
        series = [(l, [(t0_ms + (phase * PER_PHASE + k) * 1000, float(phase * 1000 + k))
                       for k in range(PER_PHASE)]) for t, l in SERIES if t == tenant]
        body = wire.snappy_literal(wire.write_request(series))
        req = urllib.request.Request(base + "/api/v1/write", data=body, method="POST", headers={
            "Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
            "X-Prometheus-Remote-Write-Version": "0.1.0", "X-Scope-OrgID": tenant})
        with urllib.request.urlopen(req, timeout=10) as r:
            assert r.status == 204, r.status


def expected(t0_ms, phases):
    return {(l["__name__"], l["i"]): {t0_ms + k * 1000 for k in range(phases * PER_PHASE)}
            for _, l in SERIES}


def vm_samples(vm):
    q = urllib.parse.urlencode({"match[]": '{__name__=~"rwout_.*"}'})
    with urllib.request.urlopen(vm + "/api/v1/export?" + q, timeout=10) as r:
        lines = r.read().decode().splitlines()
    got = {}
    for line in lines:
        o = json.loads(line)
        got.setdefault((o["metric"]["__name__"], o["metric"]["i"]), set()).update(o["timestamps"])
    return got


def prom_samples(prom):
    got = {}
    for r in api(prom, "/api/v1/query", query='{__name__=~"rwout_.*"}[1h]')["result"]:
        got[(r["metric"]["__name__"], r["metric"]["i"])] = {int(round(float(t) * 1000))
                                                             for t, _ in r["values"]}
    return got


def has_all(p, fn, url, exp):
    p.check_alive()
    try:
        got = fn(url)
    except OSError:
        return False
    return all(exp[k] <= got.get(k, set()) for k in exp)


def metrics(base):
    _, body = http_get(base + "/metrics")
    out = {}
    for line in body.decode().splitlines():
        if line.startswith("vigil_remote_write_") and "remote=" in line:
            k, _, v = line.rpartition(" ")
            out[k] = float(v)
    return out


def check_recorded(rec, m):
    reqs = rec.received("/rw")
    assert len(reqs) >= 3, reqs
    for r in reqs:
        h = {k.lower(): v for k, v in r["headers"].items()}
        assert h.get("content-encoding") == "snappy", h
        assert h.get("content-type") == "application/x-protobuf", h
        assert h.get("x-prometheus-remote-write-version") == "0.1.0", h
        assert h.get("user-agent", "").startswith("vigil-collector/"), h
        assert h.get("x-test") == "yes" and h.get("authorization") == "Bearer tok", h
    orgs = {r["headers"].get("X-Scope-OrgID") for r in reqs}
    assert orgs == {None, "acme"}, orgs
    assert m['vigil_remote_write_retried_samples_total{remote="rec"}'] > 0, m
    assert m['vigil_remote_write_failed_samples_total{remote="rec"}'] > 0, m
    assert [r["status"] for r in reqs[:2]] == [503, 400]


def stop_proc(p, name, sig):
    """Stop one process on purpose; it is then no longer checked for being alive."""
    entry = [e for e in p.procs if e[0] == name][0]
    entry[1].send_signal(sig)
    rc = entry[1].wait(timeout=60)
    assert rc == (0 if sig == signal.SIGTERM else -sig), (name, rc, p.log(name)[-2000:])
    p.procs.remove(entry)
    entry[2].close()


def make_certs(d):
    """A CA and a server certificate for the name vm.test only (not 127.0.0.1)."""
    def run(*args):
        subprocess.run(["openssl"] + list(args), check=True, capture_output=True, timeout=60)
    run("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/ca.key", "-out",
        d + "/ca.pem", "-days", "2", "-subj", "/CN=vigil-it-ca")
    with open(d + "/ext.cnf", "w") as f:
        f.write("subjectAltName=DNS:vm.test\n")
    run("req", "-newkey", "rsa:2048", "-nodes", "-keyout", d + "/srv.key", "-out",
        d + "/srv.csr", "-subj", "/CN=vm.test")
    run("x509", "-req", "-in", d + "/srv.csr", "-CA", d + "/ca.pem", "-CAkey", d + "/ca.key",
        "-CAcreateserial", "-out", d + "/srv.pem", "-days", "2", "-extfile", d + "/ext.cnf")


def start_vm(p, name, port, data, tls_dir=None):
    tls = ["-tls", "-tlsCertFile=%s/srv.pem" % tls_dir,
           "-tlsKeyFile=%s/srv.key" % tls_dir] if tls_dir else []
    p.start(name, ["victoria-metrics", "-httpListenAddr=127.0.0.1:%d" % port,
                   "-storageDataPath=" + data, "-retentionPeriod=100y"] + tls)
    url = "http%s://127.0.0.1:%d" % ("s" if tls_dir else "", port)
    wait_port(port)
    if not tls_dir:
        wait_until(name + " up", lambda: http_get(url + "/health")[0] == 200)
    return url


def wait_port(port):
    def up():
        with socket.socket() as s:
            return s.connect_ex(("127.0.0.1", port)) == 0
    wait_until("port %d" % port, up)


def vm_tls_samples(url, ca):
    """vm_samples over TLS to 127.0.0.1, the certificate checked against vm.test."""
    ctx = ssl.create_default_context(cafile=ca)
    ctx.check_hostname = False
    q = urllib.parse.urlencode({"match[]": '{__name__=~"rwout_.*"}'})
    with urllib.request.urlopen(url + "/api/v1/export?" + q, timeout=10, context=ctx) as r:
        lines = r.read().decode().splitlines()
    got = {}
    for line in lines:
        o = json.loads(line)
        got.setdefault((o["metric"]["__name__"], o["metric"]["i"]), set()).update(o["timestamps"])
    return got


def main():
    with Receiver(script=[503, 400], default=204) as rec, Procs() as p:
        vm_port, prom_port, port = free_port(), free_port(), free_port()
        vm = start_vm(p, "vm", vm_port, os.path.join(p.dir, "vm"))
        make_certs(p.dir)
        tls_port = free_port()
        vmtls = start_vm(p, "vmtls", tls_port, os.path.join(p.dir, "vmtls"), tls_dir=p.dir)
        prom = "http://127.0.0.1:%d" % prom_port
        with open(os.path.join(p.dir, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1m}\n")
        p.start("prometheus", ["prometheus", "--config.file=" + os.path.join(p.dir, "prom.yml"),
                               "--storage.tsdb.path=" + os.path.join(p.dir, "prom"),
                               "--web.enable-remote-write-receiver",
                               "--web.listen-address=127.0.0.1:%d" % prom_port])
        wait_until("prometheus ready", lambda: http_get(prom + "/-/ready")[0] == 200)
        cfg = os.path.join(p.dir, "collector.yml")
        q = "queue_config: {batch_send_deadline: 500ms, min_backoff: 30ms, max_backoff: 1s}"
        with open(cfg, "w") as f:
            f.write("remote_write:\n"
                    "  - {url: '%s/api/v1/write', name: vm, %s}\n"
                    "  - url: '%s/api/v1/write'\n"
                    "    name: prom\n"
                    "    %s\n"
                    "    write_relabel_configs: [{target_label: via, replacement: vigil}]\n"
                    "  - url: '%s/rw'\n"
                    "    name: rec\n"
                    "    headers: {X-Test: yes}\n"
                    "    authorization: {credentials: tok}\n"
                    "    %s\n"
                    "  - url: '%s/api/v1/write'\n"
                    "    name: tls\n"
                    "    tls_config: {ca_file: '%s/ca.pem', server_name: vm.test}\n"
                    % (vm, q, prom, q, rec.url, q, vmtls, p.dir))
        collector_argv = [os.path.join(BUILD, "vigil-collector"), "--config", cfg,
                          "--listen", "127.0.0.1:%d" % port, "--data-dir", os.path.join(p.dir, "c")]
        p.start("collector", collector_argv)
        base = "http://127.0.0.1:%d" % port
        wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)

        t0 = (int(time.time()) - 1200) * 1000
        post_samples(base, t0, 0)
        exp = expected(t0, 1)
        wait_until("VictoriaMetrics has phase 0", lambda: has_all(p, vm_samples, vm, exp),
                   timeout=120)
        wait_until("Prometheus has phase 0", lambda: has_all(p, prom_samples, prom, exp),
                   timeout=120)
        wait_until("VictoriaMetrics over TLS (server_name vm.test) has phase 0", lambda: has_all(
            p, lambda u: vm_tls_samples(u, p.dir + "/ca.pem"), vmtls, exp), timeout=120)
        r = api(prom, "/api/v1/query", query='rwout_a{via="vigil"}[1h]')["result"]
        assert len(r) == 3, "write_relabel_configs not applied: %r" % r
        print("phase 0: both receivers hold %d samples" % sum(len(v) for v in exp.values()))

        stop_proc(p, "vm", signal.SIGTERM)
        post_samples(base, t0, 1)
        exp = expected(t0, 2)
        wait_until("sender retrying against the stopped VictoriaMetrics", lambda: metrics(base).get(
            'vigil_remote_write_retried_samples_total{remote="vm"}', 0) > 0, timeout=60)
        wait_until("Prometheus has phase 1", lambda: has_all(p, prom_samples, prom, exp),
                   timeout=120)
        time.sleep(3)  # an outage of several backoff rounds (not a timing assertion)
        vm = start_vm(p, "vm2", vm_port, os.path.join(p.dir, "vm"))
        wait_until("VictoriaMetrics has phase 1 after its restart",
                   lambda: has_all(p, vm_samples, vm, exp), timeout=180)
        m = metrics(base)
        print("collector sender metrics: %r" % m)
        wait_until("the recording receiver got a 2xx", lambda: any(
            r["status"] == 204 for r in rec.received("/rw")))
        m = metrics(base)
        for r in ("vm", "prom"):
            assert m.get('vigil_remote_write_failed_samples_total{remote="%s"}' % r) == 0, m
            assert m.get('vigil_remote_write_samples_total{remote="%s"}' % r) >= \
                sum(len(v) for v in exp.values()), m
        check_recorded(rec, m)

        # Phase 2: VictoriaMetrics down again, and the collector killed while
        # its sender still owes it samples: the restarted collector resumes
        # from the cursor file.
        stop_proc(p, "vm2", signal.SIGTERM)
        post_samples(base, t0, 2)
        exp = expected(t0, 3)
        wait_until("sender retrying again", lambda: metrics(base).get(
            'vigil_remote_write_pending_samples{remote="vm"}', 0) > 0, timeout=60)
        stop_proc(p, "collector", signal.SIGKILL)
        p.start("collector2", collector_argv)
        wait_until("collector ready again", lambda: http_get(base + "/-/ready")[0] == 200)
        vm = start_vm(p, "vm3", vm_port, os.path.join(p.dir, "vm"))
        wait_until("VictoriaMetrics has phase 2 after the collector's kill -9",
                   lambda: has_all(p, vm_samples, vm, exp), timeout=180)
        wait_until("Prometheus has phase 2", lambda: has_all(p, prom_samples, prom, exp),
                   timeout=120)
        print("phase 2: both receivers hold %d samples" % sum(len(v) for v in exp.values()))
        p.check_alive()
    print("test_remote_write_out: OK")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
