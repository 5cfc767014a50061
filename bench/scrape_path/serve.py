#!/usr/bin/env python3
"""serve.py - serve the fixture on N loopback ports and a blackhole sink, and
write an agent config for them into DIR (host metrics off); runs until killed.

  bench/scrape_path/serve.py --targets 50 --out DIR
"""
import argparse
import os
import sys
import time

here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "..", "agent_vs_vmagent"))
sys.path.insert(0, os.path.join(here, ".."))
import run as R  # noqa: E402
from common import free_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--targets", type=int, default=50)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    with open(R.FIXTURE, "rb") as f:
        body = f.read()
    ports = []
    while len(ports) < a.targets:
        p = free_port()
        if p not in ports:
            ports.append(p)
    R.serve_fixture(ports, body)
    sink = free_port()
    R.serve_blackhole(sink, {"bytes": 0, "requests": 0})
    os.makedirs(a.out, exist_ok=True)
    R.write_configs(a.out, ports, 10, free_port(), sink)
    with open(os.path.join(a.out, "vigil.yml"), "a") as f:
        f.write("host_metrics: {enabled: false}\n")
    print("ready", flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    sys.exit(main())
