#!/usr/bin/env python3
"""test_rules.py - Prometheus rule files and rule evaluation, end to end.

  test_rules.py check   `vigilctl check rules` and the real `promtool check
                        rules` agree on every file of tests/data/rules/
                        (both pass good/*, both fail each bad/*).
  test_rules.py eval    a collector with a rule file: samples pushed with
                        remote-write make an alert go pending then firing in
                        /api/v1/alerts; the recording rule's output is
                        queryable; SIGHUP and POST /-/reload with a broken
                        file keep the old rules; a fixed file is picked up.
  test_rules.py shape   the same rule file loaded by a real Prometheus and by
                        the collector: /api/v1/rules and /api/v1/alerts have
                        the same keys with the same JSON types.
"""
import glob
import http.client
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ROOT, Procs, api, free_port, http_get, wait_until  # noqa: E402
import wire  # noqa: E402

DATA = os.path.join(ROOT, "tests", "data", "rules")
VIGILCTL = os.path.join(BUILD, "vigilctl")


def run(argv):
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=60)
    return r.returncode, r.stdout.decode() + r.stderr.decode()


def check_mode():
    good = sorted(glob.glob(os.path.join(DATA, "good", "*.yml")))
    bad = sorted(glob.glob(os.path.join(DATA, "bad", "*.yml")))
    assert good and bad
    for f in good + bad:
        want_ok = f in good
        prc, pout = run(["promtool", "check", "rules", f])
        vrc, vout = run([VIGILCTL, "check", "rules", f])
        assert (prc == 0) == want_ok, "promtool on %s: %s" % (f, pout)
        assert (vrc == 0) == want_ok, "vigilctl on %s: %s" % (f, vout)
        assert vout.startswith("Checking %s\n" % f), vout
        if want_ok:
            assert "SUCCESS:" in vout and vout.split("SUCCESS:")[1].split()[0] == \
                pout.split("SUCCESS:")[1].split()[0], (vout, pout)
        else:
            assert "FAILED:" in vout and os.path.basename(f) in vout.split("FAILED:")[1], vout
    # Several files in one call: exit 1 when any failed, every file reported.
    rc, out = run([VIGILCTL, "check", "rules", good[0], bad[0]])
    assert rc == 1 and out.count("Checking ") == 2, out
    print("check: %d good and %d bad files agree with promtool" % (len(good), len(bad)))


RULES = """groups:
  - name: temps
    interval: 1s
    rules:
      - record: job:temp:max
        expr: max by (job) (temp)
      - alert: TooHot
        expr: job:temp:max > 40
        for: 3s
        labels:
          severity: warning
        annotations:
          summary: "{{ $labels.job }} is at {{ $value }} degrees"
"""


def write(path, text):
    with open(path, "w") as f:
        f.write(text)


def push(port, value):
    now = int(time.time() * 1000)
    series = [({"__name__": "temp", "job": "oven", "instance": "a"}, [(now, value)])]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/write", body=wire.snappy_literal(wire.write_request(series)),
                 headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                          "X-Prometheus-Remote-Write-Version": "0.1.0"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 204, r.status


def start_collector(p, rules_text, port):
    rules = os.path.join(p.dir, "rules.yml")
    write(rules, rules_text)
    cfg = os.path.join(p.dir, "collector.yml")
    write(cfg, "collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
               "evaluation_interval: 1s\n"
               "global: {external_labels: {cluster: it}}\n"
               "rule_files: [rules.yml]\n" % (port, os.path.join(p.dir, "data")))
    proc = p.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return base, rules, proc


def alerts(base):
    return api(base, "/api/v1/alerts")["alerts"]


def alert_state(base):
    a = alerts(base)
    return a[0]["state"] if a else None


def rule_names(base):
    return [r["name"] for g in api(base, "/api/v1/rules")["groups"] for r in g["rules"]]


def post_reload(base):
    req = urllib.request.Request(base + "/-/reload", data=b"", method="POST")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


def eval_mode():
    with Procs() as p:
        port = free_port()
        base, rules, proc = start_collector(p, RULES, port)
        push(port, 50)
        wait_until("alert pending", lambda: alert_state(base) == "pending", timeout=60, interval=0.1)
        wait_until("alert firing", lambda: alert_state(base) == "firing", timeout=60)
        a = alerts(base)[0]
        assert a["labels"] == {"alertname": "TooHot", "job": "oven", "severity": "warning"}, a
        assert a["annotations"]["summary"] == "oven is at 50 degrees", a
        assert a["value"] == "5e+01", a
        res = api(base, "/api/v1/query", query="job:temp:max")["result"]
        assert res and res[0]["metric"] == {"__name__": "job:temp:max", "job": "oven"}, res
        res = api(base, "/api/v1/query", query='ALERTS{alertstate="firing"}')["result"]
        assert res and res[0]["metric"]["alertname"] == "TooHot", res
        only = api(base, "/api/v1/rules", type="record")["groups"][0]["rules"]
        assert [r["type"] for r in only] == ["recording"], only
        # A broken file keeps the running rules, on SIGHUP and on POST /-/reload.
        write(rules, RULES + "      - record: broken\n        expr: sum(\n")
        proc.send_signal(signal.SIGHUP)
        wait_until("reload failure logged", lambda: "reload failed" in p.log("collector"))
        assert post_reload(base) == 500
        assert rule_names(base) == ["job:temp:max", "TooHot"]
        assert alert_state(base) == "firing"
        # A fixed file is picked up, and the alert keeps its state.
        write(rules, RULES + "      - record: job:temp:min\n        expr: min by (job) (temp)\n")
        assert post_reload(base) == 200
        assert rule_names(base) == ["job:temp:max", "TooHot", "job:temp:min"]
        assert alert_state(base) == "firing"
        p.check_alive()
    print("eval: pending -> firing, recording output, reload keeps rules on errors")


SHAPE_RULES = """groups:
  - name: shape
    interval: 1s
    rules:
      - record: one:value
        expr: vector(1)
        labels: {source: rec}
      - record: plain
        expr: vector(2)
      - alert: AlwaysFiring
        expr: vector(1) > 0
        labels: {severity: info}
        annotations: {summary: "value {{ $value }}"}
      - alert: AlwaysPending
        expr: vector(3)
        for: 1h
      - alert: Never
        expr: vector(1) < 0
  - name: limited
    interval: 1s
    limit: 1
    rules:
      - alert: Broken
        expr: 'label_replace(vector(1), "i", "1", "", "") or label_replace(vector(1), "i", "2", "", "")'
"""


def shape(v):
    """The JSON type structure of v: keys and value types, lists by their first item."""
    if isinstance(v, dict):
        return {k: shape(x) for k, x in v.items()}
    if isinstance(v, list):
        return [shape(v[0])] if v else []
    return type(v).__name__


def by_name(groups):
    return {r["name"]: r for g in groups for r in g["rules"]}


def shape_mode():
    with Procs() as p:
        port = free_port()
        base, _, _ = start_collector(p, SHAPE_RULES, port)
        pport = free_port()
        pdir = os.path.join(p.dir, "prom")
        os.mkdir(pdir)
        write(os.path.join(pdir, "rules.yml"), SHAPE_RULES)
        write(os.path.join(pdir, "prometheus.yml"),
              "global: {evaluation_interval: 1s, external_labels: {cluster: it}}\n"
              "rule_files: [rules.yml]\n")
        p.start("prometheus", ["prometheus", "--config.file=" + os.path.join(pdir, "prometheus.yml"),
                               "--storage.tsdb.path=" + os.path.join(pdir, "data"),
                               "--web.listen-address=127.0.0.1:%d" % pport])
        pbase = "http://127.0.0.1:%d" % pport

        def evaluated(b):
            rs = by_name(api(b, "/api/v1/rules")["groups"])
            return all(r["health"] != "unknown" for r in rs.values()) and \
                rs["AlwaysFiring"]["state"] == "firing"
        wait_until("prometheus evaluated", lambda: evaluated(pbase), timeout=120)
        wait_until("collector evaluated", lambda: evaluated(base), timeout=60)
        ours, theirs = api(base, "/api/v1/rules"), api(pbase, "/api/v1/rules")
        assert shape(ours["groups"][0]).keys() == shape(theirs["groups"][0]).keys()
        ro, rt = by_name(ours["groups"]), by_name(theirs["groups"])
        assert ro.keys() == rt.keys()
        for name in rt:
            assert shape(ro[name]) == shape(rt[name]), (name, ro[name], rt[name])
            for k in ("state", "health", "type", "query", "labels", "annotations", "duration"):
                assert ro[name].get(k) == rt[name].get(k), (name, k, ro[name], rt[name])
        for go, gt in zip(ours["groups"], theirs["groups"]):
            for k in ("name", "interval", "limit"):
                assert go[k] == gt[k], (k, go, gt)
            assert [r["name"] for r in go["rules"]] == [r["name"] for r in gt["rules"]]
        ao, at = api(base, "/api/v1/alerts"), api(pbase, "/api/v1/alerts")
        assert shape(ao) == shape(at), (ao, at)
        strip = lambda al: sorted((json.dumps(a["labels"], sort_keys=True), a["state"], a["value"],
                                   json.dumps(a["annotations"], sort_keys=True)) for a in al)
        assert strip(ao["alerts"]) == strip(at["alerts"]), (ao, at)
        assert ro["Broken"]["lastError"] == rt["Broken"]["lastError"], (ro["Broken"], rt["Broken"])
        p.check_alive()
    print("shape: /api/v1/rules and /api/v1/alerts match Prometheus's keys and types")


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "check"
    {"check": check_mode, "eval": eval_mode, "shape": shape_mode}[mode]()
