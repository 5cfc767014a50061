#!/usr/bin/env python3
"""test_alerting_e2e.py - a metric crosses a threshold, someone gets paged.

The whole alerting path with real processes: remote-write -> store -> rule
evaluation -> dispatcher (routing, grouping, inhibition, notification log)
-> notifiers -> HTTP. Two local recording receivers stand in for PagerDuty
and Slack. The collector runs the shipped default policy
(packaging/alerting-default.yml) with only its placeholders and timers
replaced, and the rules of tests/data/alerting/e2e_rules.yml: one
alertname at warning (> 100) and critical (> 1000) severity.

  1. Below both thresholds: rules evaluate, nothing fires, nobody is called.
  2. Above both: the alerts go pending, then firing; PagerDuty gets an
     Events API v2 trigger (routing key, dedup_key = hex SHA-256 of the
     group key); the warning is listed suppressed, inhibitedBy the critical,
     and after two more flushes of every group Slack still got nothing.
  3. Recovery: PagerDuty gets a resolve with the same dedup_key.
  4. Above the warning threshold only: the inhibition is released and Slack
     gets the warning.
Every wait polls a condition with a generous deadline; nothing is timed.
"""
import hashlib
import http.client
import json
import os
import re
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ROOT, Procs, api, free_port, http_get, parse_exposition, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402
import wire  # noqa: E402

RULES = os.path.join(ROOT, "tests", "data", "alerting", "e2e_rules.yml")
POLICY = os.path.join(ROOT, "packaging", "alerting-default.yml")
ROUTING_KEY = "e2e0routing0key0000000000000000a"  # 32 characters, as PagerDuty's
SLACK_PATH = "/services/T000/B000/XXXX"
PD_PATH = "/v2/enqueue"
SERIES = {"__name__": "e2e_queue_depth", "job": "queue", "instance": "q1",
          "cluster": "c1", "service": "api"}
GROUP_LABELS = '{alertname="QueueBacklog", cluster="c1", service="api"}'


def sub_once(text, old, new):
    """Replace the one occurrence of old; fail loudly if the policy file changed shape."""
    assert text.count(old) == 1, "expected %r once in %s" % (old, POLICY)
    return text.replace(old, new)


def policy(pd_url, slack_url):
    """The default policy, pointed at the local receivers, with short timers."""
    with open(POLICY) as f:
        text = f.read()
    m = re.search(r"\n( +- )routing_key: REPLACE_WITH_PAGERDUTY_ROUTING_KEY\n", text)
    assert m, "no PagerDuty routing_key placeholder in %s" % POLICY
    indent = " " * len(m.group(1))
    text = sub_once(text, "routing_key: REPLACE_WITH_PAGERDUTY_ROUTING_KEY\n",
                    "routing_key: %s\n%surl: '%s'\n" % (ROUTING_KEY, indent, pd_url))
    text = sub_once(text, "https://REPLACE_WITH_SLACK_WEBHOOK_URL.invalid" + SLACK_PATH,
                    "'%s'" % slack_url)
    text = sub_once(text, "group_wait: 30s", "group_wait: 1s")
    return sub_once(text, "group_interval: 5m", "group_interval: 2s")


def push(port, value):
    """One sample of SERIES at the current time, by remote-write."""
    series = [(SERIES, [(int(time.time() * 1000), value)])]
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    conn.request("POST", "/api/v1/write", body=wire.snappy_literal(wire.write_request(series)),
                 headers={"Content-Type": "application/x-protobuf", "Content-Encoding": "snappy",
                          "X-Prometheus-Remote-Write-Version": "0.1.0"})
    r = conn.getresponse()
    r.read()
    conn.close()
    assert r.status == 204, r.status


def metric(base, name, **labels):
    _, body = http_get(base + "/metrics")
    return sum(float(v) for l, v in parse_exposition(body.decode())
               if l["__name__"] == name and all(l.get(k) == v for k, v in labels.items()))


def evaluated_since_now(base):
    """Wait for two more passes of the rule group, so one began after this call."""
    n = metric(base, "vigil_rule_evaluations_total")
    wait_until("two rule evaluations", lambda: metric(base, "vigil_rule_evaluations_total") >= n + 2)


def rule_alerts(base):
    """{severity: state} from /api/v1/alerts."""
    return {a["labels"]["severity"]: a["state"] for a in api(base, "/api/v1/alerts")["alerts"]}


def am_alerts(base):
    """{severity: alert} from the dispatcher's /api/v2/alerts."""
    _, body = http_get(base + "/api/v2/alerts")
    return {a["labels"]["severity"]: a for a in json.loads(body)}


def events(rcv):
    return [r["body"] for r in rcv.received(PD_PATH)]


def start(procs, pd, slack):
    port = free_port()
    cfg = os.path.join(procs.dir, "collector.yml")
    with open(cfg, "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\n"
                "evaluation_interval: 1s\n"
                "rule_files: ['%s']\n" % (port, os.path.join(procs.dir, "data"), RULES))
        f.write(policy(pd.url + PD_PATH, slack.url + SLACK_PATH))
    procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200, timeout=120)
    return port, base


def below(port, base, pd, slack):
    push(port, 50)
    evaluated_since_now(base)
    rules = [r for g in api(base, "/api/v1/rules")["groups"] for r in g["rules"]]
    assert [(r["name"], r["labels"]["severity"], r["state"], r["health"]) for r in rules] == \
        [("QueueBacklog", "warning", "inactive", "ok"), ("QueueBacklog", "critical", "inactive", "ok")], rules
    assert rule_alerts(base) == {} and am_alerts(base) == {}
    assert pd.received() == [] and slack.received() == []


def above(port, base, pd, slack):
    push(port, 5000)
    seen = set()

    def both_firing():
        st = rule_alerts(base)
        seen.update("%s:%s" % kv for kv in st.items())
        return st == {"warning": "firing", "critical": "firing"}
    wait_until("both alerts firing", both_firing, interval=0.1)
    # Pending is visible for `for` (5s); if a slow poll missed it, ALERTS kept it.
    hist = api(base, "/api/v1/query",
               query='max by (severity) (max_over_time(ALERTS{alertstate="pending"}[5m]))')["result"]
    assert sorted(r["metric"]["severity"] for r in hist) == ["critical", "warning"], (hist, seen)

    trig = wait_until("PagerDuty trigger", lambda: events(pd))[0]
    assert trig["event_action"] == "trigger" and trig["routing_key"] == ROUTING_KEY, trig
    assert re.fullmatch("[0-9a-f]{64}", trig["dedup_key"]), trig
    key = '{}/{severity="critical"}:' + GROUP_LABELS
    assert trig["dedup_key"] == hashlib.sha256(key.encode()).hexdigest(), trig
    assert trig["payload"]["summary"].startswith("[FIRING:1] QueueBacklog"), trig

    def inhibited():
        al = am_alerts(base)
        w, c = al.get("warning"), al.get("critical")
        return w and c and w["status"]["state"] == "suppressed" and \
            w["status"]["inhibitedBy"] == [c["fingerprint"]] and c["status"]["state"] == "active"
    wait_until("warning suppressed, inhibited by the critical", inhibited)
    groups = metric(base, "vigil_alert_groups")
    assert groups == 2, groups  # the PagerDuty group and the Slack group
    flushes = metric(base, "vigil_alert_group_flushes_total")
    wait_until("two more flushes of each group",
               lambda: metric(base, "vigil_alert_group_flushes_total") >= flushes + 2 * groups)
    assert slack.received() == [], slack.received()
    assert am_alerts(base)["warning"]["status"]["state"] == "suppressed"
    return trig


def recover(port, base, pd, slack, trig):
    push(port, 0)
    wait_until("PagerDuty resolve", lambda: len(events(pd)) >= 2)
    res = events(pd)[1]
    assert res["event_action"] == "resolve" and res["dedup_key"] == trig["dedup_key"], res
    assert res["routing_key"] == ROUTING_KEY, res
    assert rule_alerts(base) == {}, "the alerts resolved"
    # The warning was never notified, so its resolution is not sent either.
    assert slack.received() == [], slack.received()


def release(port, base, pd, slack):
    push(port, 500)
    msg = wait_until("Slack warning", lambda: slack.received(SLACK_PATH), timeout=90)[0]["body"]
    assert rule_alerts(base) == {"warning": "firing"}
    att = msg["attachments"]
    assert msg["channel"] == "#alerts" and len(att) == 1, msg
    assert att[0]["title"].startswith("[FIRING:1] QueueBacklog"), att
    assert [r["path"] for r in slack.received()] == [SLACK_PATH]
    assert [e["event_action"] for e in events(pd)] == ["trigger", "resolve"], events(pd)
    assert metric(base, "vigil_notifications_total", integration="pagerduty") == 2
    assert metric(base, "vigil_notifications_total", integration="slack") == 1


def main():
    with Procs() as procs, Receiver() as pd, Receiver() as slack:
        port, base = start(procs, pd, slack)
        below(port, base, pd, slack)
        trig = above(port, base, pd, slack)
        recover(port, base, pd, slack, trig)
        release(port, base, pd, slack)
        procs.check_alive()
    print("OK: threshold -> pending -> firing -> PagerDuty trigger, warning inhibited on Slack, "
          "resolve with the same dedup_key, warning released to Slack")


if __name__ == "__main__":
    main()
