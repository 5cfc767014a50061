#!/usr/bin/env python3
"""The real amtool against Vigil's Alertmanager v2 silences API.

A collector runs with a data_dir. `amtool --alertmanager.url=... silence add
alertname=Foo -c test -a me` creates a silence and prints its id; `silence
query -o json` lists it as active with the matcher, author and comment;
the raw API agrees (GET /api/v2/silence/{id}, filter=). The collector is
then stopped and started on the same data_dir: the silence is still there.
`silence expire ID` expires it: query no longer shows it, `query --expired`
does, with state "expired", and that too survives a restart. The
dispatcher's tests check that a silence actually mutes notifications.
"""
import json
import os
import shutil
import subprocess
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import Procs, free_port, http_get, wait_until  # noqa: E402

BUILD = os.environ.get("VIGIL_BUILD_DIR", os.path.join(os.path.dirname(__file__), "../../build"))


def start_collector(p, name, port, data):
    p.start(name, [os.path.join(BUILD, "vigil-collector"), "--listen", "127.0.0.1:%d" % port,
                   "--data-dir", data])
    base = "http://127.0.0.1:%d" % port
    wait_until("collector ready", lambda: http_get(base + "/-/ready")[0] == 200)
    return base


def amtool(base, *args):
    r = subprocess.run(["amtool", "--alertmanager.url=" + base] + list(args),
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise AssertionError("amtool %s failed (%d): %s %s" % (args, r.returncode, r.stdout, r.stderr))
    return r.stdout


def query(base, *extra):
    return json.loads(amtool(base, "silence", "query", "-o", "json", *extra))


def restart(p, port, data, n):
    bad = p.stop_all()
    assert not bad, "unclean shutdown: %r" % bad
    p.procs = []
    return start_collector(p, "collector%d" % n, port, data)


def main():
    if not shutil.which("amtool"):
        print("amtool is not installed")
        return 1
    with Procs() as p:
        port, data = free_port(), os.path.join(p.dir, "data")
        base = start_collector(p, "collector", port, data)

        sid = amtool(base, "silence", "add", "alertname=Foo", "-c", "test", "-a", "me").strip()
        assert len(sid) == 36, "amtool printed %r, not a silence id" % sid
        sil = query(base)
        assert [s["id"] for s in sil] == [sid], sil
        s = sil[0]
        assert s["status"]["state"] == "active", s
        assert s["createdBy"] == "me" and s["comment"] == "test", s
        assert s["matchers"] == [{"name": "alertname", "value": "Foo", "isRegex": False,
                                  "isEqual": True}], s
        status, body = http_get(base + "/api/v2/silence/" + sid)
        assert status == 200 and json.loads(body)["id"] == sid
        q = urllib.parse.urlencode({"filter": 'alertname="Foo"'})
        assert [x["id"] for x in json.loads(http_get(base + "/api/v2/silences?" + q)[1])] == [sid]
        q = urllib.parse.urlencode({"filter": 'alertname="Bar"'})
        assert json.loads(http_get(base + "/api/v2/silences?" + q)[1]) == []
        assert os.path.exists(os.path.join(data, "silences"))

        base = restart(p, port, data, 2)
        sil = query(base)
        assert [x["id"] for x in sil] == [sid], "silence lost over a restart: %r" % sil
        assert sil[0]["status"]["state"] == "active"

        amtool(base, "silence", "expire", sid)
        assert query(base) == [], "expired silence still listed as current"
        gone = query(base, "--expired")
        assert [x["id"] for x in gone] == [sid] and gone[0]["status"]["state"] == "expired", gone

        base = restart(p, port, data, 3)
        gone = query(base, "--expired")
        assert [x["id"] for x in gone] == [sid] and gone[0]["status"]["state"] == "expired", gone
        assert query(base) == []
        p.check_alive()
    print("amtool silence add/query/expire against Vigil: OK")
    return 0


if __name__ == "__main__":
    sys.exit(main())
