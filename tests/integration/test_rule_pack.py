#!/usr/bin/env python3
"""test_rule_pack.py - the shipped rule pack (alerts/*.yml) and its runbooks.

Checks, with the real promtool:
  - `promtool check rules alerts/*.yml` passes;
  - `promtool test rules tests/data/alerts/*.yml` (the pack's unit tests) pass;
  - `vigilctl check rules alerts/*.yml` passes too, once vigilctl has that
    subcommand (until then that half is skipped with a message);
  - every alerting rule has severity critical|warning, summary, description
    and runbook_url, and the runbook file docs/runbooks/<alert>.md exists;
  - the default policy packaging/alerting-default.yml is a valid
    Alertmanager config (`amtool check-config` on the block under
    `alerting:`) with the critical->PagerDuty, warning->Slack routes and the
    critical-inhibits-warning rule.
`test_rule_pack.py templates` is a live differential instead: one alert
whose annotations are every template of tests/data/template/*.jsonl (plus
`query` cases), loaded by a real Prometheus and by the collector; every
annotation in /api/v1/alerts must be the same string on both.
Standard library only: the rule files are scanned line by line (the pack is
written in one block style, which this test also enforces).
"""
import glob
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ROOT, Procs, api, free_port, wait_until  # noqa: E402

ALERTS = sorted(glob.glob(os.path.join(ROOT, "alerts", "*.yml")))
UNIT_TESTS = sorted(glob.glob(os.path.join(ROOT, "tests", "data", "alerts", "*.yml")))


def run(cmd):
    p = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout + p.stderr


def check_promtool():
    assert ALERTS, "no rule files in alerts/"
    rc, out = run(["promtool", "check", "rules"] + ALERTS)
    assert rc == 0, "promtool check rules failed:\n" + out
    print("promtool check rules: OK (%d files)" % len(ALERTS))
    if UNIT_TESTS:
        rc, out = run(["promtool", "test", "rules"] + UNIT_TESTS)
        assert rc == 0, "promtool test rules failed:\n" + out
        print("promtool test rules: OK (%d files)" % len(UNIT_TESTS))


def check_vigilctl():
    ctl = os.path.join(BUILD, "vigilctl")
    assert os.path.exists(ctl), "vigilctl not built in " + BUILD
    rc, out = run([ctl, "check", "rules"] + ALERTS)
    if rc == 2 and "usage:" in out and "check rules" not in out:
        print("SKIP vigilctl half: this vigilctl has no `check rules` subcommand yet (%s)" % out.strip().splitlines()[0])
        return
    assert rc == 0, "vigilctl check rules failed:\n" + out
    print("vigilctl check rules: OK")


def rules_of(path):
    """Yield (alert name, block text) for each alerting rule in a rule file."""
    lines = open(path).read().splitlines()
    starts = [i for i, l in enumerate(lines) if re.match(r"^\s*- (alert|record|name):", l)]
    for n, i in enumerate(starts):
        m = re.match(r"^\s*- alert:\s*(\S+)", lines[i])
        if m:
            end = starts[n + 1] if n + 1 < len(starts) else len(lines)
            yield m.group(1), "\n".join(lines[i:end])


def check_annotations():
    seen = 0
    for path in ALERTS:
        for name, block in rules_of(path):
            seen += 1
            where = "%s: alert %s" % (os.path.basename(path), name)
            sev = re.search(r"^\s+severity:\s*\"?(\w+)\"?\s*$", block, re.M)
            assert sev and sev.group(1) in ("critical", "warning"), where + ": severity must be critical|warning"
            for key in ("summary", "description", "runbook_url"):
                assert re.search(r"^\s+%s:\s*\S" % key, block, re.M), where + ": missing annotation " + key
            url = re.search(r"^\s+runbook_url:\s*\"?([^\"\s]+)\"?\s*$", block, re.M).group(1)
            want = "docs/runbooks/%s.md" % name
            assert url.endswith(want), "%s: runbook_url %s does not point at %s" % (where, url, want)
            assert os.path.isfile(os.path.join(ROOT, want)), where + ": runbook file missing: " + want
            text = open(os.path.join(ROOT, want)).read()
            for h in ("What it means", "How to check", "How to fix"):
                assert h in text, "%s: runbook lacks a '%s' section" % (want, h)
    assert seen >= 15, "expected a full pack, found %d alerts" % seen
    print("annotations and runbooks: OK (%d alerts)" % seen)


def check_policy():
    text = open(os.path.join(ROOT, "packaging", "alerting-default.yml")).read()
    head, body = text.split("\nalerting:\n", 1)
    am = "\n".join(l[2:] if l.startswith("  ") else l for l in body.splitlines()) + "\n"
    for want in ('matchers: [\'severity="critical"\']', 'matchers: [\'severity="warning"\']',
                 "receiver: pagerduty-critical", "receiver: slack-warnings",
                 "equal: [alertname, cluster, service]", "group_by: [alertname, cluster, service]",
                 "REPLACE_WITH_PAGERDUTY_ROUTING_KEY", "REPLACE_WITH_SLACK_WEBHOOK_URL"):
        assert want in am, "alerting-default.yml lacks " + want
    if not shutil.which("amtool"):
        print("SKIP amtool check-config: amtool not installed")
        return
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "alertmanager.yml")
        open(path, "w").write(am)
        rc, out = run(["amtool", "check-config", path])
        assert rc == 0, "amtool check-config failed on the default policy:\n" + out
    # routing: critical -> PagerDuty, warning -> Slack (amtool's routing test)
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "alertmanager.yml")
        open(path, "w").write(am)
        for sev, recv in (("critical", "pagerduty-critical"), ("warning", "slack-warnings")):
            rc, out = run(["amtool", "config", "routes", "test", "--config.file=" + path,
                           "--verify.receivers=" + recv, "severity=" + sev, "alertname=X"])
            assert rc == 0, "severity=%s does not route to %s:\n%s" % (sev, recv, out)
    print("default policy: OK")


QUERY_CASES = [
    '{{ query "vector(3)" | first | value }}',
    '{{ range query "label_replace(vector(2), \\"a\\", \\"x\\", \\"\\", \\"\\")" }}{{ .Labels.a }}={{ .Value }}{{ end }}',
    '{{ with query "vector(0.5) > 1" }}{{ . | first | value }}{{ else }}empty{{ end }}',
    '{{ query "vector(1234567)" | first | value | humanize }} {{ len (query "vector(1)") }}',
]


def template_cases():
    cases = []
    for name in ("prometheus_rendered.jsonl", "promtool_check.jsonl"):
        for line in open(os.path.join(ROOT, "tests", "data", "template", name)):
            d = json.loads(line)
            # parse errors would reject the whole rule file; the external URL differs by setup
            if name == "promtool_check.jsonl" and d["want"]:
                continue
            if "externalURL" in d["src"]:
                continue
            cases.append(d["src"])
    return cases + QUERY_CASES


def templates_mode():
    cases = template_cases()
    rules = ["groups:", "  - name: templates", "    interval: 1s", "    rules:",
             "      - alert: X", "        expr: vector(1234567)", "        annotations:"]
    rules += ["          t%03d: %s" % (i, json.dumps(c)) for i, c in enumerate(cases)]
    text = "\n".join(rules) + "\n"
    with Procs() as p:
        with open(os.path.join(p.dir, "rules.yml"), "w") as f:
            f.write(text)
        port, pport = free_port(), free_port()
        cfg = os.path.join(p.dir, "collector.yml")
        with open(cfg, "w") as f:
            f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s'}\nevaluation_interval: 1s\n"
                    "rule_files: [rules.yml]\n" % (port, os.path.join(p.dir, "data")))
        p.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg])
        pcfg = os.path.join(p.dir, "prometheus.yml")
        with open(pcfg, "w") as f:
            f.write("global: {evaluation_interval: 1s}\nrule_files: [rules.yml]\n")
        p.start("prometheus", ["prometheus", "--config.file=" + pcfg,
                               "--storage.tsdb.path=" + os.path.join(p.dir, "pdata"),
                               "--web.listen-address=127.0.0.1:%d" % pport])
        base, pbase = "http://127.0.0.1:%d" % port, "http://127.0.0.1:%d" % pport

        def annotations(b):
            al = api(b, "/api/v1/alerts")["alerts"]
            return al[0]["annotations"] if al else None
        theirs = wait_until("prometheus alert", lambda: annotations(pbase), timeout=120)
        ours = wait_until("collector alert", lambda: annotations(base), timeout=120)
        diffs = ["t%03d %s\n  prometheus: %r\n  vigil:      %r"
                 % (i, c, theirs.get("t%03d" % i), ours.get("t%03d" % i))
                 for i, c in enumerate(cases) if theirs.get("t%03d" % i) != ours.get("t%03d" % i)]
        p.check_alive()
    assert not diffs, "%d of %d templates render differently:\n%s" % (len(diffs), len(cases), "\n".join(diffs))
    print("templates: %d annotations identical to Prometheus's" % len(cases))


def main():
    if len(sys.argv) > 1 and sys.argv[1] == "templates":
        templates_mode()
        print("PASS")
        return
    check_promtool()
    check_annotations()
    check_policy()
    check_vigilctl()
    print("PASS")


if __name__ == "__main__":
    try:
        main()
    except AssertionError as e:
        print("FAIL:", e)
        sys.exit(1)
