#!/usr/bin/env python3
"""Relabeling and file-based discovery end to end, through a real collector.

  test_relabel_e2e.py relabel   relabel_configs keep one target by a label,
                                drop another, add labels by replace;
                                metric_relabel_configs drop some names and
                                keep others. /api/v1/series must return
                                exactly the expected series.
  test_relabel_e2e.py file_sd   targets come from a file_sd JSON file that is
                                rewritten while the agent runs: the new
                                target's series appear, and the removed
                                target's `up` goes stale (an instant query
                                for it returns nothing).
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, FixtureServer, Procs, api, free_port, wait_until  # noqa: E402

BODY = ("# TYPE app_requests_total counter\n"
        "app_requests_total{code=\"200\"} 5\n"
        "app_errors_total 1\n"
        "go_goroutines 7\n"
        "debug_cache_entries 3\n"
        "other_metric 2\n")
REPORT = ("up", "scrape_duration_seconds", "scrape_samples_scraped",
          "scrape_samples_post_metric_relabeling", "scrape_series_added")


def write(path, text):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)  # atomic, as file_sd expects


def start(procs, scrape_configs):
    cport, aport = free_port(), free_port()
    d = procs.dir
    agent = ("agent: {listen: '127.0.0.1:%d', node: it-node, data_dir: '%s/agent'}\n"
             "global: {scrape_interval: 1s, scrape_timeout: 1s, evaluation_interval: 1m}\n"
             "host_metrics: {enabled: false}\n"
             "scrape_configs:\n%s"
             "output:\n  http: {url: 'http://127.0.0.1:%d'}\n" % (aport, d, scrape_configs, cport))
    collector = "collector: {listen: '127.0.0.1:%d', data_dir: '%s/collector'}\n" % (cport, d)
    write(os.path.join(d, "agent.yml"), agent)
    write(os.path.join(d, "collector.yml"), collector)
    procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config",
                              os.path.join(d, "collector.yml")])
    procs.start("agent", [os.path.join(BUILD, "vigil-agent"), "--config", os.path.join(d, "agent.yml")])
    return "http://127.0.0.1:%d" % cport


def series(base, match):
    return {tuple(sorted(s.items())) for s in api(base, "/api/v1/series", **{"match[]": match})}


def value(base, query):
    res = api(base, "/api/v1/query", query=query)["result"]
    return [r["value"][1] for r in res]


def test_relabel(procs, servers):
    web, db, cache = servers
    sc = ("  - job_name: rl\n"
          "    static_configs:\n"
          "      - {targets: ['127.0.0.1:%d'], labels: {role: web}}\n"
          "      - {targets: ['127.0.0.1:%d'], labels: {role: db}}\n"
          "      - {targets: ['127.0.0.1:%d'], labels: {role: cache}}\n"
          "    relabel_configs:\n"
          "      - {source_labels: [role], regex: 'web|cache', action: keep}\n"
          "      - {source_labels: [role], regex: cache, action: drop}\n"
          "      - source_labels: [__address__]\n"
          "        regex: '.*:(\\d+)'\n"
          "        target_label: port\n"
          "        replacement: 'p$1'\n"
          "      - {target_label: tier, replacement: frontend}\n"
          "    metric_relabel_configs:\n"
          "      - {source_labels: [__name__], regex: 'go_.*|debug_.*', action: drop}\n"
          "      - {source_labels: [__name__], regex: 'app_.*', action: keep}\n"
          % (web.port, db.port, cache.port))
    base = start(procs, sc)
    inst = "127.0.0.1:%d" % web.port
    target = {"instance": inst, "job": "rl", "role": "web", "port": "p%d" % web.port,
              "tier": "frontend"}
    want = set()
    for name, extra in [("app_requests_total", {"code": "200"}), ("app_errors_total", {})] + \
            [(n, {}) for n in REPORT]:
        want.add(tuple(sorted(dict(target, __name__=name, **extra).items())))

    def all_there():
        procs.check_alive()
        got = series(base, '{job="rl"}')
        return got if want <= got else None

    got = wait_until("the relabeled series in /api/v1/series", all_there, timeout=120)
    assert got == want, "unexpected series:\n  extra %r\n  missing %r" % (
        sorted(got - want), sorted(want - got))
    # the dropped targets were never scraped
    assert db.requests == 0 and cache.requests == 0, (db.requests, cache.requests)
    assert value(base, 'scrape_samples_scraped{job="rl"}') == ["5"]
    assert value(base, 'scrape_samples_post_metric_relabeling{job="rl"}') == ["2"]
    assert value(base, 'app_requests_total{job="rl"}') == ["5"]
    print("relabel: %d series, exactly as expected" % len(got))


def test_file_sd(procs, servers):
    a, b, c = servers
    sd_dir = os.path.join(procs.dir, "sd")
    os.mkdir(sd_dir)
    path = os.path.join(sd_dir, "targets.json")

    def groups(*srvs):
        return json.dumps([{"targets": ["127.0.0.1:%d" % s.port for s in srvs],
                            "labels": {"env": "it"}}])

    write(path, groups(a, b))
    sc = ("  - job_name: sd\n"
          "    file_sd_configs: [{files: ['%s/*.json']}]\n"  # default refresh 5m: inotify must see it
          "    relabel_configs:\n"
          "      - {source_labels: [__meta_filepath], target_label: from}\n"
          "    metric_relabel_configs:\n"
          "      - {source_labels: [__name__], regex: 'app_requests_total', action: keep}\n"
          % sd_dir)
    base = start(procs, sc)
    ia, ib, ic = ("127.0.0.1:%d" % s.port for s in (a, b, c))

    def up_of(inst):
        return value(base, 'up{job="sd",instance="%s"}' % inst)

    wait_until("up for the first two targets",
               lambda: procs.check_alive() or (up_of(ia) == ["1"] and up_of(ib) == ["1"]), timeout=120)
    got = series(base, 'app_requests_total{job="sd"}')
    assert {dict(s)["instance"] for s in got} == {ia, ib}, got
    assert all(dict(s)["from"] == path and dict(s)["env"] == "it" for s in got), got

    write(path, groups(a, c))  # b goes away, c arrives, a stays
    wait_until("the new target's series", lambda: procs.check_alive() or
               any(dict(s)["instance"] == ic for s in series(base, 'app_requests_total{job="sd"}')),
               timeout=120)
    wait_until("the removed target's up to go stale", lambda: up_of(ib) == [], timeout=60)
    assert value(base, 'app_requests_total{job="sd",instance="%s"}' % ib) == []
    assert up_of(ia) == ["1"] and up_of(ic) == ["1"]
    print("file_sd: target replaced while running; the removed one went stale")


def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "relabel"
    with Procs() as procs:
        fixture = os.path.join(procs.dir, "fixture.prom")
        with open(fixture, "w") as f:
            f.write(BODY)
        with FixtureServer(fixture) as s1, FixtureServer(fixture) as s2, FixtureServer(fixture) as s3:
            {"relabel": test_relabel, "file_sd": test_file_sd}[mode](procs, (s1, s2, s3))
            procs.check_alive()
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
