#!/usr/bin/env python3
"""test_alerting_reload.py - SIGHUP reloads the collector's `alerting:` section.

A running collector routes a posted alert to receiver "a" (a recording
webhook). Then, with the alert still firing:

  1. The config now routes to receiver "b" and adds an inhibit rule. After
     SIGHUP, vigil_config_last_reload_successful is 1 and its timestamp
     moved, the stored alert is re-routed and reaches "b", and a warning
     posted with a critical on the same instance is listed as suppressed,
     inhibited by it.
  2. A broken config (the route names a receiver that is not defined) is
     refused: the gauge drops to 0, the log says why, POST /-/reload answers
     500, and a new alert still goes to "b" under the old config.
  3. A valid config again (receiver "c") is taken: the gauge is back to 1
     and the alerts reach "c".
Every wait polls a condition with a generous deadline; nothing is timed.
"""
import json
import os
import signal
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, parse_exposition, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402

TIMERS = {"group_by": ["alertname"], "group_wait": "1s", "group_interval": "2s",
          "repeat_interval": "1h"}


def post(base, alerts):
    req = urllib.request.Request(base + "/api/v2/alerts", method="POST",
                                 data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def metric(base, name):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    vals = [v for l, v in parse_exposition(text) if l["__name__"] == name]
    return float(vals[0]) if vals else None


def alertnames(rcv, path):
    out = set()
    for r in rcv.received(path):
        for a in (r["body"] or {}).get("alerts", []):
            if a.get("status") == "firing":
                out.add(a["labels"]["alertname"])
    return out


def write_config(path, port, data, receiver, receivers, inhibit=None):
    alerting = {"route": dict(TIMERS, receiver=receiver),
                "receivers": [{"name": n, "webhook_configs": [{"url": u}]}
                              for n, u in receivers.items()]}
    if inhibit:
        alerting["inhibit_rules"] = inhibit
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump({"collector": {"listen": "127.0.0.1:%d" % port, "data_dir": data},
                   "alerting": alerting}, f)
    os.replace(tmp, path)


def reloaded(base, ok, after_ts):
    """The gauge says ok, and for a success its timestamp moved past after_ts."""
    if metric(base, "vigil_config_last_reload_successful") != ok:
        return False
    return not ok or metric(base, "vigil_config_last_reload_success_timestamp_seconds") > after_ts


def main():
    with Procs() as procs, Receiver() as rcv:
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        data = os.path.join(procs.dir, "data")
        os.makedirs(data)
        cfg = os.path.join(procs.dir, "collector.yml")
        urls = {n: rcv.url + "/" + n for n in ("a", "b", "c")}
        write_config(cfg, port, data, "a", {"a": urls["a"]})
        proc = procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
        wait_until("collector ready", lambda: urllib.request.urlopen(base + "/-/ready").status == 200)
        assert metric(base, "vigil_config_last_reload_successful") == 1

        post(base, [{"labels": {"alertname": "Before", "instance": "x", "severity": "critical"}}])
        wait_until("receiver a gets Before", lambda: "Before" in alertnames(rcv, "/a"))

        # 1. new route, receiver and inhibit rule
        ts = metric(base, "vigil_config_last_reload_success_timestamp_seconds")
        write_config(cfg, port, data, "b", {"b": urls["b"]},
                     inhibit=[{"source_matchers": ['severity="critical"'],
                               "target_matchers": ['severity="warning"'], "equal": ["instance"]}])
        proc.send_signal(signal.SIGHUP)
        wait_until("reload taken", lambda: reloaded(base, 1, ts))
        wait_until("the stored alert re-routed to b", lambda: "Before" in alertnames(rcv, "/b"))
        post(base, [{"labels": {"alertname": "Warn", "instance": "x", "severity": "warning"}}])

        def warn_state():
            with urllib.request.urlopen(base + "/api/v2/alerts", timeout=10) as r:
                alerts = json.loads(r.read())
            return [a["status"] for a in alerts if a["labels"]["alertname"] == "Warn"]
        st = wait_until("Warn listed", warn_state)[0]
        assert st["state"] == "suppressed" and st["inhibitedBy"], st

        # 2. a broken config is refused and the old one keeps routing
        write_config(cfg, port, data, "nosuch", {"c": urls["c"]})
        proc.send_signal(signal.SIGHUP)
        wait_until("reload refused", lambda: reloaded(base, 0, 0))
        wait_until("the refusal logged", lambda: "reload failed" in procs.log("collector"))
        assert "nosuch" in procs.log("collector"), procs.log("collector")[-2000:]
        try:
            urllib.request.urlopen(urllib.request.Request(base + "/-/reload", method="POST",
                                                          data=b""), timeout=30)
            raise AssertionError("POST /-/reload accepted a broken config")
        except urllib.error.HTTPError as e:
            assert e.code == 500, e.code
        post(base, [{"labels": {"alertname": "During", "instance": "y", "severity": "critical"}}])
        wait_until("the old config routes During to b", lambda: "During" in alertnames(rcv, "/b"))
        assert rcv.received("/c") == []

        # 3. valid again
        ts = metric(base, "vigil_config_last_reload_success_timestamp_seconds")
        write_config(cfg, port, data, "c", {"c": urls["c"]})
        proc.send_signal(signal.SIGHUP)
        wait_until("reload taken again", lambda: reloaded(base, 1, ts))
        wait_until("alerts re-routed to c",
                   lambda: {"Before", "During", "Warn"} <= alertnames(rcv, "/c"))
        procs.check_alive()
    print("ok")


if __name__ == "__main__":
    main()
