#!/usr/bin/env python3
"""Crash during replay: kill -9 of the agent while it replays its spool, then
a restart. The spool must still be readable, the replay must complete, and
the collector must have every batch seq of the agent with no gap.

  1. An agent scrapes three fixture targets, shipping over HTTP to a
     collector URL where nothing listens: every batch goes to the spool
     (condition: its spool holds >= K batches). It is stopped with SIGTERM.
  2. The collector starts on that URL. The agent is started again (same
     data_dir) and replays; as soon as the collector has stored some but
     not all of the spooled seqs, the agent gets SIGKILL.
  3. The agent starts a third time and drains the spool (condition: spool
     records 0 and the collector's highest seq for the agent equals the
     agent's own). After a clean stop, the collector's tracker must show the
     agent's whole sequence 1..N with no gap (duplicates are allowed: they
     are at-least-once redeliveries, applied idempotently).
"""
import os
import signal
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, SHARED, FixtureServer, Procs, free_port, http_get, wait_until  # noqa: E402
from ship_helpers import (FIXTURE_NAME, agent_seqs, agent_yaml, metric, read_seq_file, stop,  # noqa: E402
                          write_configs)

FIXTURE = os.path.join(SHARED, "testdata", "exposition", FIXTURE_NAME)
K = 600  # spooled batches before the restart: replay takes long enough to interrupt


def write_agent_config(d, aport, cport, fixture_ports):
    output = ("  http: {url: 'http://127.0.0.1:%d'}\n"
              "  batch_max_bytes: 4KiB\n"  # many small batches: a replay with many steps
              % cport)
    text = agent_yaml(aport, "it-node", os.path.join(d, "agent-data"), fixture_ports, output,
                      "spool: {max_bytes: 512MiB}\n")
    return write_configs(d, agent=text)["agent"]


def the_agent(seqs):
    ids = [a for a in seqs if a.startswith("it-node/")]
    assert len(ids) <= 1, "the agent showed up under several ids (restarts must keep it): %r" % ids
    return seqs[ids[0]] if ids else None


def main():
    with Procs() as procs, FixtureServer(FIXTURE) as f1, FixtureServer(FIXTURE) as f2, \
            FixtureServer(FIXTURE) as f3:
        aport, cport = free_port(), free_port()
        abase, cbase = "http://127.0.0.1:%d" % aport, "http://127.0.0.1:%d" % cport
        cfg = write_agent_config(procs.dir, aport, cport, [f1.port, f2.port, f3.port])
        agent = [os.path.join(BUILD, "vigil-agent"), "--config", cfg]
        data_dir = os.path.join(procs.dir, "agent-data")

        # 1. nobody at the collector URL: the spool fills
        procs.start("agent1", agent)

        def spooled():
            procs.check_alive()
            return metric(abase, "vigil_agent_spool_records", kind="metrics") >= K

        wait_until("the agent's spool to hold %d batches" % K, spooled, timeout=240, interval=0.5)
        stop(procs, "agent1")
        n1 = read_seq_file(data_dir)
        print("phase 1: %d batches spooled, agent seq %d" % (K, n1))

        # 2. collector up; interrupt the replay half-way
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--listen",
                                  "127.0.0.1:%d" % cport, "--data-dir", os.path.join(procs.dir, "col")])
        wait_until("collector ready", lambda: http_get(cbase + "/-/ready")[0] == 200, timeout=60)
        procs.start("agent2", agent)

        def replay_started():
            procs.check_alive()
            a = the_agent(agent_seqs(cbase))
            return a and a["highest"] > 0 and a

        a = wait_until("the replay to reach the collector", replay_started, timeout=120,
                       interval=0.02)
        stop(procs, "agent2", signal.SIGKILL)
        assert a["highest"] < n1, ("the replay finished (%d of %d) before it could be interrupted; "
                                   "raise K" % (a["highest"], n1))
        got = the_agent(agent_seqs(cbase))
        print("phase 2: killed during replay; collector had seq %d of %d (now %d)"
              % (a["highest"], n1, got["highest"]))

        # 3. restart: the spool opens (torn tail or not) and the replay completes
        procs.start("agent3", agent)

        def drained():
            procs.check_alive()
            if metric(abase, "vigil_agent_spool_records", kind="metrics") != 0:
                return False
            want = metric(abase, "vigil_agent_batch_seq")
            got = the_agent(agent_seqs(cbase))
            return want >= n1 and got and got["highest"] == want

        wait_until("the spool to drain into the collector", drained, timeout=240, interval=0.5)
        torn = metric(abase, "vigil_agent_spool_torn_tails_total", kind="metrics")
        corrupt = metric(abase, "vigil_agent_spool_corrupt_records_total", kind="metrics")
        stop(procs, "agent3")
        n3 = read_seq_file(data_dir)
        final = wait_until("collector to have seq %d" % n3,
                           lambda: (lambda a: a if a and a["highest"] >= n3 else None)(
                               the_agent(agent_seqs(cbase))), timeout=30)
        print("phase 3: agent seq %d; collector highest %d, gaps %d, duplicates %d; "
              "spool torn tails %d, corrupt records %d"
              % (n3, final["highest"], final["gaps"], final["duplicates"], torn, corrupt))
        assert final["highest"] == n3, final
        assert final["gaps"] == 0, "the collector is missing %d batch seqs" % final["gaps"]
        procs.check_alive()
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
