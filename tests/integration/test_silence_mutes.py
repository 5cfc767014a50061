"""test_silence_mutes.py - a silence set with amtool mutes a firing alert.

vigil-collector routes alerts to a recording webhook. A silence added with
the real amtool against the collector's /api/v2/silences mutes a firing
alert: the dispatcher flushes its group (the flush counter moves) and the
alert is listed as suppressed with the silence id in silencedBy, but the
webhook gets nothing. Expiring the silence with amtool unmutes it: the next
flush notifies. Then the collector restarts on the same data dir: the
notification log and the expired silence come back, so the same alert,
posted again, flushes without paging a second time. Conditions are
polled, never timed.
"""
import json
import os
import subprocess
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, free_port, parse_exposition, wait_until  # noqa: E402
from receiver import Receiver  # noqa: E402


def flushes(base):
    with urllib.request.urlopen(base + "/metrics", timeout=10) as r:
        text = r.read().decode()
    return sum(float(v) for l, v in parse_exposition(text)
               if l["__name__"] == "vigil_alert_group_flushes_total")


def alerts(base):
    with urllib.request.urlopen(base + "/api/v2/alerts", timeout=10) as r:
        return json.loads(r.read())


def main():
    with Procs() as procs, Receiver() as hook:
        port = free_port()
        base = "http://127.0.0.1:%d" % port
        data = os.path.join(procs.dir, "data")
        os.makedirs(data)
        cfg = os.path.join(procs.dir, "collector.yml")
        with open(cfg, "w") as f:
            json.dump({"collector": {"listen": "127.0.0.1:%d" % port, "data_dir": data},
                       "alerting": {"route": {"receiver": "hook", "group_by": ["alertname"],
                                              "group_wait": "1s", "group_interval": "1s",
                                              "repeat_interval": "1h"},
                                    "receivers": [{"name": "hook", "webhook_configs": [
                                        {"url": hook.url + "/hook"}]}]}}, f)
        argv = [os.path.join(BUILD, "vigil-collector"), "--config", cfg]
        proc = procs.start("collector", argv)
        wait_until("collector ready", lambda: urllib.request.urlopen(base + "/-/ready").status == 200)
        amtool = ["amtool", "--alertmanager.url=" + base]
        sid = subprocess.run(amtool + ["silence", "add", "alertname=Muted", "--comment=test",
                                       "--author=test", "--duration=1h"],
                             capture_output=True, text=True)
        assert sid.returncode == 0, sid.stderr
        sid = sid.stdout.strip()
        assert sid, "amtool printed no silence id"

        def post_alert():
            req = urllib.request.Request(base + "/api/v2/alerts", method="POST",
                                         data=json.dumps([{"labels": {"alertname": "Muted",
                                                                      "instance": "a"}}]).encode(),
                                         headers={"Content-Type": "application/json"})
            urllib.request.urlopen(req, timeout=10).read()
        post_alert()
        f0 = flushes(base)
        wait_until("alert listed as silenced", lambda: any(
            a["status"]["state"] == "suppressed" and sid in a["status"]["silencedBy"]
            for a in alerts(base)))
        wait_until("two flushes of the muted group", lambda: flushes(base) >= f0 + 2)
        assert hook.received() == [], hook.received()

        subprocess.run(amtool + ["silence", "expire", sid], check=True, capture_output=True)
        got = wait_until("notification once the silence expired", lambda: hook.received())
        body = got[0]["body"]
        assert body["status"] == "firing" and body["alerts"][0]["labels"]["alertname"] == "Muted", body
        assert all(a["status"]["state"] == "active" for a in alerts(base))

        # Restart on the same data dir: the log remembers the page.
        proc.terminate()
        assert proc.wait(timeout=30) == 0, "collector did not stop cleanly"
        proc = procs.start("collector-2", argv)
        wait_until("collector ready again", lambda: urllib.request.urlopen(base + "/-/ready").status == 200)
        post_alert()
        f0 = flushes(base)
        wait_until("two flushes after the restart", lambda: flushes(base) >= f0 + 2)
        assert len(hook.received()) == 1, "paged again after a restart: %r" % hook.received()
        print("OK: muted while silenced, notified after amtool expired silence %s, "
              "not re-paged after a restart" % sid)


if __name__ == "__main__":
    main()
