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
Standard library only: the rule files are scanned line by line (the pack is
written in one block style, which this test also enforces).
"""
import glob
import os
import re
import shutil
import subprocess
import sys
import tempfile

from harness import BUILD, ROOT

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


def main():
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
