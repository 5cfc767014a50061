"""test_notifiers.py - PagerDuty and Slack notifiers through a running collector.

Alerts posted to /api/v2/alerts are routed by severity (critical -> PagerDuty,
warning -> Slack, the platform's default policy) to a local recording
receiver that stands in for both services. PagerDuty's endpoint first
answers 503 and 429, which must be retried; Slack's answers 400 once,
which must not be. Checks: the Events API v2 trigger and resolve share the
dedup_key (hex SHA-256 of the group key), the Slack message is one
attachment coloured "danger" (sent again by the next flush after the 400,
since a failed notification is not logged), the critical alert inhibits the warning with
the same alertname, and the self-metrics count every outcome.
"""
import hashlib
import json
import os
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, parse_exposition, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402


def post(base, alerts):
    req = urllib.request.Request(base + "/api/v2/alerts", method="POST", data=json.dumps(alerts).encode(),
                                 headers={"Content-Type": "application/json"})
    urllib.request.urlopen(req, timeout=10).read()


def metric(base, name, **labels):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(v) for l, v in parse_exposition(text)
               if l["__name__"] == name and all(l.get(k) == v for k, v in labels.items()))


def main():
    # PagerDuty: 503, 429, then 200 for the trigger; Slack: 400 (final) then 200.
    with Procs() as procs, Receiver(script=[]) as rcv:
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        data = os.path.join(procs.dir, "data")
        os.makedirs(data)
        cfg = os.path.join(procs.dir, "collector.yml")
        alerting = {
            "global": {"pagerduty_url": rcv.url + "/pd/v2/enqueue"},
            "route": {"receiver": "slack", "group_by": ["alertname", "cluster", "service"],
                      "group_wait": "1s", "group_interval": "3s", "repeat_interval": "1h",
                      "routes": [{"matchers": ['severity="critical"'], "receiver": "pagerduty"},
                                 {"matchers": ['severity="warning"'], "receiver": "slack"}]},
            "receivers": [
                {"name": "pagerduty", "pagerduty_configs": [{"routing_key": "rk-123"}]},
                {"name": "slack", "slack_configs": [{"api_url": rcv.url + "/slack",
                                                     "channel": "#ops"}]},
            ],
            "inhibit_rules": [{"source_matchers": ['severity="critical"'],
                               "target_matchers": ['severity="warning"'],
                               "equal": ["alertname", "cluster", "service"]}],
        }
        with open(cfg, "w") as f:
            json.dump({"collector": {"listen": "127.0.0.1:%d" % port, "data_dir": data},
                       "alerting": alerting}, f)
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
        wait_until("collector ready", lambda: urllib.request.urlopen(base + "/-/ready").status == 200)

        with rcv.lock:
            rcv.script[:] = [503, 429]
        crit = {"alertname": "Errors", "cluster": "c1", "service": "api", "severity": "critical"}
        warn = dict(crit, severity="warning")
        post(base, [{"labels": crit}, {"labels": warn}])
        pd = wait_until("PagerDuty trigger accepted",
                        lambda: [r for r in rcv.received("/pd/v2/enqueue") if r["status"] == 200])
        trig = pd[0]["body"]
        assert len(rcv.received("/pd/v2/enqueue")) == 3, "503 and 429 must be retried"
        group_key = '{}/{severity="critical"}:{alertname="Errors", cluster="c1", service="api"}'
        assert trig["event_action"] == "trigger" and trig["routing_key"] == "rk-123", trig
        assert trig["dedup_key"] == hashlib.sha256(group_key.encode()).hexdigest(), trig
        assert trig["payload"]["custom_details"]["num_firing"] == "1", trig
        assert trig["payload"]["summary"].startswith("[FIRING:1] Errors"), trig

        # The warning is inhibited: no Slack message while the critical fires.
        flushes = metric(base, "vigil_alert_group_flushes_total")
        wait_until("two more flushes", lambda: metric(base, "vigil_alert_group_flushes_total") >= flushes + 2)
        assert rcv.received("/slack") == [], rcv.received("/slack")

        # Critical resolves: PagerDuty resolve with the same dedup_key; the warning is
        # released to Slack, whose first answer (400) must not be retried.
        with rcv.lock:
            rcv.paths["/slack"] = [400]
        post(base, [{"labels": crit, "endsAt": "2001-01-01T00:00:00Z",
                     "startsAt": "2000-01-01T00:00:00Z"}])
        res = wait_until("PagerDuty resolve", lambda: [r["body"] for r in rcv.received("/pd/v2/enqueue")
                                                        if r["body"]["event_action"] == "resolve"])
        assert res[0]["dedup_key"] == trig["dedup_key"] and "payload" not in res[0], res[0]
        sl = wait_until("Slack message accepted",
                        lambda: [r for r in rcv.received("/slack") if r["status"] == 200])
        first = rcv.received("/slack")[0]
        assert first["status"] == 400 and first["body"] == sl[0]["body"], \
            "the 400 was retried within the flush, or the next flush sent something else"
        assert metric(base, "vigil_notifications_failed_total", integration="slack",
                      reason="clientError") == 1
        att = sl[0]["body"]["attachments"]
        assert sl[0]["body"]["channel"] == "#ops" and len(att) == 1, sl[0]["body"]
        assert att[0]["color"] == "danger" and att[0]["title"].startswith("[FIRING:1] Errors"), att

        assert metric(base, "vigil_notification_requests_total", integration="pagerduty") >= 4
        assert metric(base, "vigil_notification_requests_failed_total", integration="pagerduty") == 2
        assert metric(base, "vigil_notifications_total", integration="slack") >= 1
        print("OK: PagerDuty trigger/resolve with one dedup_key after retries, Slack after inhibition")


if __name__ == "__main__":
    main()
