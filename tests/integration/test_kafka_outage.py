#!/usr/bin/env python3
"""Kafka outage: the agent ships through a real broker that goes away for at
least 30 s and comes back. Nothing may be lost.

  1. A private broker (its own VIGIL_KAFKA_DIR, so `down`/`up` touch nobody
     else's), a collector consuming from it, and an agent scraping two
     fixture targets every second into Kafka. Wait until batches flow.
  2. `kafka.sh down`. Wait for the agent's circuit breaker to open and its
     spool to grow (conditions), and for at least 30 s of outage (the issue
     asks for 30 s). `kafka.sh up`.
  3. Wait until the agent's spool is empty and the collector has stored the
     agent's latest seq; stop the agent cleanly.
  4. Assert: the collector's seq tracker shows the agent's whole sequence
     1..N with no gap (a duplicate is allowed: it was applied idempotently);
     and the fixture's `up` series has samples inside every 5 s slice of the
     outage, read back with a range selector evaluated at times inside the
     window (so the 5-minute lookback cannot hide a hole: only samples whose
     own timestamps fall in (t-5s, t] count).
"""
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, ROOT, SHARED, FixtureServer, Procs, api, free_port, wait_until  # noqa: E402
from ship_helpers import (FIXTURE_NAME, agent_seqs, agent_yaml, metric, read_seq_file, stop,  # noqa: E402
                          write_configs)

FIXTURE = os.path.join(SHARED, "testdata", "exposition", FIXTURE_NAME)
OUTAGE_S = 30
SLICE_S = 5


class Broker:
    """A private broker for this test; down/up act on it only."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="vigil-kafka-outage-")
        self.env = dict(os.environ, VIGIL_KAFKA_DIR=self.dir)
        self.script = os.path.join(ROOT, "scripts", "kafka.sh")

    def run(self, cmd):
        out = subprocess.run([self.script, cmd], env=self.env, check=True, stdout=subprocess.PIPE,
                             text=True, timeout=300)
        return out.stdout.strip().splitlines()[-1] if out.stdout.strip() else ""

    def __enter__(self):
        self.addr = self.run("start")
        return self

    def __exit__(self, *exc):
        subprocess.run([self.script, "stop"], env=self.env, timeout=120)
        shutil.rmtree(self.dir, ignore_errors=True)
        return False


def configs(d, broker, aport, cport, fixture_ports):
    run = uuid.uuid4().hex[:8]
    mt, at = "vigil.metrics.outage-%s" % run, "vigil.audit.outage-%s" % run
    output = ("  kafka:\n"
              "    brokers: '%s'\n"
              "    metrics_topic: %s\n"
              "    audit_topic: %s\n"
              # a delivery report within 3 s, so an outage is noticed in seconds, not minutes
              "    properties: {message.timeout.ms: '3000'}\n" % (broker, mt, at))
    agent = agent_yaml(aport, "outage-node", os.path.join(d, "agent-data"), fixture_ports, output)
    collector = ("collector: {listen: '127.0.0.1:%d', data_dir: '%s/collector'}\n"
                 "input:\n  kafka: {brokers: '%s', group_id: outage-%s, metrics_topic: %s, "
                 "audit_topic: %s}\n" % (cport, d, broker, run, mt, at))
    return write_configs(d, agent=agent, collector=collector)


def the_agent(cbase):
    ids = [a for a in agent_seqs(cbase) if a.startswith("outage-node/")]
    assert len(ids) <= 1, "the agent showed up under several ids: %r" % ids
    return agent_seqs(cbase)[ids[0]] if ids else None


def check_outage_samples(cbase, instances, t_down, t_up):
    """Every SLICE_S-second slice of the outage holds an `up` sample per target."""
    holes = []
    t = t_down + SLICE_S
    checked = 0
    while t <= t_up:
        res = api(cbase, "/api/v1/query", query='up{job="fixture"}[%ds]' % SLICE_S, time="%.3f" % t)
        assert res["resultType"] == "matrix", res["resultType"]
        seen = {}
        for s in res["result"]:
            ts = [float(v[0]) for v in s["values"] if t - SLICE_S < float(v[0]) <= t]
            seen[s["metric"]["instance"]] = len(ts)
        for inst in instances:
            if not seen.get(inst):
                holes.append((round(t - t_down, 1), inst))
        checked += 1
        t += SLICE_S
    assert checked >= OUTAGE_S // SLICE_S - 1, checked
    assert not holes, "no samples in these slices of the outage (s after down, target): %r" % holes
    return checked


def main():
    with Broker() as broker, Procs() as procs, FixtureServer(FIXTURE) as f1, \
            FixtureServer(FIXTURE) as f2:
        aport, cport = free_port(), free_port()
        abase, cbase = "http://127.0.0.1:%d" % aport, "http://127.0.0.1:%d" % cport
        cfg = configs(procs.dir, broker.addr, aport, cport, [f1.port, f2.port])
        data_dir = os.path.join(procs.dir, "agent-data")
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg["collector"]])
        procs.start("agent", [os.path.join(BUILD, "vigil-agent"), "--config", cfg["agent"]])

        def flowing():
            procs.check_alive()
            a = the_agent(cbase)
            return a and a["highest"] >= 3

        wait_until("batches to flow agent -> Kafka -> collector", flowing, timeout=180)

        # 2. the outage
        t_down = time.time()
        broker.run("down")
        print("broker down at seq %d" % the_agent(cbase)["highest"])

        def breaker_open_and_spooling():
            procs.check_alive()
            return (metric(abase, "vigil_agent_sink_breaker_state", sink="kafka") == 1 and
                    metric(abase, "vigil_agent_spool_records", kind="metrics") >= 3)

        wait_until("the agent's breaker to open and its spool to grow", breaker_open_and_spooling,
                   timeout=180, interval=0.5)
        spooled = metric(abase, "vigil_agent_spool_records", kind="metrics")
        print("breaker open after %.1fs, %d batches spooled" % (time.time() - t_down, spooled))
        wait_until("%d s of outage" % OUTAGE_S, lambda: time.time() - t_down >= OUTAGE_S,
                   timeout=OUTAGE_S + 5)
        procs.check_alive()
        t_up = time.time()
        broker.run("up")
        print("broker up after %.1fs; %d batches spooled"
              % (t_up - t_down, metric(abase, "vigil_agent_spool_records", kind="metrics")))

        # 3. the replay
        def drained():
            procs.check_alive()
            if metric(abase, "vigil_agent_spool_records", kind="metrics") != 0:
                return False
            a = the_agent(cbase)
            return a and a["highest"] == metric(abase, "vigil_agent_batch_seq") and a

        wait_until("the spool to drain into the collector", drained, timeout=240, interval=0.5)
        replayed = metric(abase, "vigil_agent_batches_replayed_total")
        print("drained %.1fs after the broker came back; %d batches replayed"
              % (time.time() - t_up, replayed))
        assert replayed >= spooled, (replayed, spooled)
        stop(procs, "agent")
        n = read_seq_file(data_dir)
        final = wait_until("the collector to store seq %d" % n,
                           lambda: (lambda a: a if a and a["highest"] >= n else None)(the_agent(cbase)),
                           timeout=60)

        # 4. nothing lost
        print("agent seq %d; collector highest %d, gaps %d, duplicates %d"
              % (n, final["highest"], final["gaps"], final["duplicates"]))
        assert final["highest"] == n, final
        assert final["gaps"] == 0, "the collector is missing %d batch seqs" % final["gaps"]
        instances = ["127.0.0.1:%d" % f1.port, "127.0.0.1:%d" % f2.port]
        slices = check_outage_samples(cbase, instances, t_down, t_up)
        print("every %d s slice of the outage (%d of them) has samples from both targets"
              % (SLICE_S, slices))
        procs.check_alive()
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
