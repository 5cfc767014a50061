"""test_alertmanager_diff.py - Vigil's dispatcher against a real Alertmanager.

One Alertmanager config (a routing tree with continue, group_by '...' and a
send_resolved: false receiver, two inhibition rules) runs in the real
prometheus-alertmanager and, under `alerting:`, in vigil-collector. Both
get the same silence and then the same steps of alerts through POST
/api/v2/alerts: fire, resolve, re-fire, an inhibited warning released when
its critical source resolves, and a final resolve of everything. Each sends
to its own recording webhook receiver. Timers differ by jitter, so the test
compares, per receiver and group key, the sequence of distinct
(firing set, resolved set) states, never timings. Each step waits until
Alertmanager has sent what the step causes and Vigil's latest states equal
Alertmanager's; at two points the alert and group listings of the v2 API
(state, silencedBy, receivers, fingerprints) must agree too.
"""
import datetime
import json
import os
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402


def am_config(hook):
    wh = lambda name, **kw: {"name": name, "webhook_configs": [dict(url=hook + "/" + name, **kw)]}
    return {
        "global": {"resolve_timeout": "5m"},
        "route": {
            "receiver": "default",
            "group_by": ["alertname", "cluster"],
            "group_wait": "1s",
            "group_interval": "2s",
            "repeat_interval": "1h",
            "routes": [
                {"matchers": ['severity="critical"'], "receiver": "pager", "continue": True},
                {"matchers": ['team="db"'], "receiver": "db", "group_by": ["..."]},
            ],
        },
        "receivers": [wh("default"), wh("pager"), wh("db", send_resolved=False)],
        "inhibit_rules": [
            {"source_matchers": ['severity="critical"'], "target_matchers": ['severity="warning"'],
             "equal": ["alertname", "cluster"]},
            {"source_matchers": ['alertname="NodeDown"'], "target_matchers": ['alertname="DiskFull"'],
             "equal": ["instance"]},
        ],
    }


def iso(t):
    """RFC 3339 with milliseconds, so both sides echo the same instant the same way."""
    d = datetime.datetime.fromtimestamp(round(t, 3), datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def post(base, path, doc):
    req = urllib.request.Request(base + path, data=json.dumps(doc).encode(),
                                 headers={"Content-Type": "application/json"}, method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.status, r.read()


def states(rcv):
    """{(receiver, groupKey): [distinct (firing, resolved) states in order]}"""
    out = {}
    for r in rcv.received():
        b = r["body"]
        key = (r["path"].lstrip("/"), b["groupKey"])
        st = tuple(frozenset(tuple(sorted(a["labels"].items())) for a in b["alerts"]
                             if a["status"] == s) for s in ("firing", "resolved"))
        seq = out.setdefault(key, [])
        if not seq or seq[-1] != st:
            seq.append(st)
    return out


def payloads(rcv):
    """{(receiver, groupKey, state): the first payload for it, normalised}"""
    out = {}
    for r in rcv.received():
        b = r["body"]
        st = tuple(frozenset(tuple(sorted(a["labels"].items())) for a in b["alerts"]
                             if a["status"] == s) for s in ("firing", "resolved"))
        key = (r["path"].lstrip("/"), b["groupKey"], st)
        if key in out:
            continue
        alerts = sorted((a["status"], sorted(a["labels"].items()), sorted(a["annotations"].items()),
                         a["startsAt"], a["endsAt"], a["generatorURL"], a["fingerprint"])
                        for a in b["alerts"])
        out[key] = {k: b[k] for k in ("receiver", "status", "groupLabels", "commonLabels",
                                      "commonAnnotations", "version", "truncatedAlerts")}
        out[key]["alerts"] = alerts
    return out


def api_view(base):
    """/api/v2/alerts and /api/v2/alerts/groups reduced to what both must agree on."""
    def get(path):
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return json.loads(r.read())

    def alert(a):
        return (tuple(sorted(a["labels"].items())), a["status"]["state"], a["fingerprint"],
                len(a["status"]["silencedBy"]) > 0, tuple(sorted(r["name"] for r in a["receivers"])))
    alerts = sorted(alert(a) for a in get("/api/v2/alerts"))
    groups = sorted((g["receiver"]["name"], tuple(sorted(g["labels"].items())),
                     tuple(sorted(alert(a) for a in g["alerts"])))
                    for g in get("/api/v2/alerts/groups"))
    return alerts, groups


def show(st):
    lines = []
    for k in sorted(st):
        lines.append("%s %s" % k)
        for f, r in st[k]:
            lines.append("   firing=%s resolved=%s" % (sorted(dict(x).get("instance", dict(x)["alertname"]) for x in f),
                                                     sorted(dict(x).get("instance", dict(x)["alertname"]) for x in r)))
    return "\n".join(lines)


A1 = {"alertname": "DiskFull", "cluster": "c1", "instance": "i1", "severity": "warning"}
A2 = {"alertname": "DiskFull", "cluster": "c1", "instance": "i2", "severity": "warning"}
B = {"alertname": "SlowQueries", "team": "db", "instance": "db1"}
S = {"alertname": "Silenced", "cluster": "c1"}
C = {"alertname": "Latency", "cluster": "c1", "severity": "critical"}
W = {"alertname": "Latency", "cluster": "c1", "severity": "warning"}
N = {"alertname": "NodeDown", "instance": "i3", "cluster": "c2"}
D3 = {"alertname": "DiskFull", "instance": "i3", "cluster": "c2", "severity": "info"}


def main():
    with Procs() as procs, Receiver() as am_hook, Receiver() as vg_hook:
        am_port, vg_port = free_port(), free_port()
        am_cfg = os.path.join(procs.dir, "alertmanager.yml")
        with open(am_cfg, "w") as f:
            json.dump(am_config(am_hook.url), f)
        vg_cfg = os.path.join(procs.dir, "collector.yml")
        vg_data = os.path.join(procs.dir, "vigil-data")
        os.makedirs(vg_data)
        with open(vg_cfg, "w") as f:
            json.dump({"collector": {"listen": "127.0.0.1:%d" % vg_port, "data_dir": vg_data},
                       "alerting": am_config(vg_hook.url)}, f)
        procs.start("alertmanager", ["prometheus-alertmanager", "--config.file=" + am_cfg,
                                     "--storage.path=" + os.path.join(procs.dir, "am-data"),
                                     "--web.listen-address=127.0.0.1:%d" % am_port,
                                     "--cluster.listen-address="])
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", vg_cfg])
        bases = {"am": "http://127.0.0.1:%d" % am_port, "vg": "http://127.0.0.1:%d" % vg_port}
        for name, base in bases.items():
            wait_until(name + " ready", lambda: urllib.request.urlopen(base + "/-/ready").status == 200)

        now = datetime.datetime.now(datetime.timezone.utc).timestamp()
        silence = {"matchers": [{"name": "alertname", "value": "Silenced", "isRegex": False,
                                 "isEqual": True}],
                   "startsAt": iso(now - 1), "endsAt": iso(now + 3600),
                   "createdBy": "test", "comment": "differential test"}
        for base in bases.values():
            post(base, "/api/v2/silences", silence)

        T = {}  # alert start times, taken when the step that fires them runs

        def wall():
            return datetime.datetime.now(datetime.timezone.utc).timestamp()

        def fire(lbls, start):
            return {"labels": lbls, "annotations": {"summary": "x"}, "startsAt": iso(start),
                    "generatorURL": "http://gen/"}

        def resolve(lbls, start):
            return dict(fire(lbls, start), endsAt=iso(wall()))

        def fire_all():
            # startsAt = now so group_wait applies: Alertmanager flushes an alert older
            # than group_wait at once, possibly before its inhibitor saw the batch's
            # sources, which would make the reference itself nondeterministic.
            T["t0"] = wall()
            return [fire(x, T["t0"]) for x in (A1, A2, B, S, C, W, N, D3)]

        def fire_again(lbls):
            T["t1"] = wall()
            return [fire(lbls, T["t1"])]

        steps = [
            # (what, alerts, Alertmanager notifications the step causes)
            ("fire everything", fire_all, 3),
            ("resolve A1", lambda: [resolve(A1, T["t0"])], 1),
            ("re-fire A1", lambda: fire_again(A1), 1),
            ("resolve the critical source: the warning is released",
             lambda: [resolve(C, T["t0"])], 2),
            ("resolve the node: its disk alert is released", lambda: [resolve(N, T["t0"])], 1),
            ("resolve everything",
             lambda: [resolve(A1, T["t1"])] + [resolve(x, T["t0"]) for x in (A2, B, S, W, D3)], 3),
        ]
        for what, alerts, expect in steps:
            before = len(am_hook.received())
            doc = alerts()
            for base in bases.values():
                st, body = post(base, "/api/v2/alerts", doc)
                assert st == 200, (base, st, body)

            def settled():
                procs.check_alive()
                return len(am_hook.received()) >= before + expect and \
                    {k: v[-1] for k, v in states(am_hook).items()} == \
                    {k: v[-1] for k, v in states(vg_hook).items()}
            try:
                wait_until("step '%s' to settle" % what, settled, timeout=60)
            except AssertionError:
                print("Alertmanager:\n%s\nVigil:\n%s" % (show(states(am_hook)), show(states(vg_hook))))
                raise
            print("step ok: %s" % what)
            if what.startswith("fire everything") or what.startswith("resolve the critical"):
                try:
                    wait_until("the same /api/v2/alerts and /alerts/groups",
                               lambda: api_view(bases["am"]) == api_view(bases["vg"]), timeout=30)
                except AssertionError:
                    print("Alertmanager: %r\nVigil:        %r" % (api_view(bases["am"]),
                                                               api_view(bases["vg"])))
                    raise

        am_st, vg_st = states(am_hook), states(vg_hook)
        if am_st != vg_st:
            print("Alertmanager:\n%s\nVigil:\n%s" % (show(am_st), show(vg_st)))
            raise AssertionError("notification sequences differ")
        # The payloads themselves: every field but externalURL (Alertmanager's is its own host).
        am_p, vg_p = payloads(am_hook), payloads(vg_hook)
        for k in am_p:
            if am_p[k] != vg_p.get(k):
                raise AssertionError("payload for %r differs:\nAlertmanager: %s\nVigil:        %s" %
                                     (k, json.dumps(am_p[k]), json.dumps(vg_p.get(k))))
        print("OK: %d groups, %d notifications from Alertmanager, %d from Vigil" %
              (len(am_st), len(am_hook.received()), len(vg_hook.received())))


if __name__ == "__main__":
    main()
