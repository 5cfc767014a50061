"""ship_helpers.py - helpers shared by the shipping tests (Kafka outage, crash
during replay): reading self-metrics, stopping one process of a Procs, and
the collector's per-agent batch seq tracking.
"""
import os
import signal
import subprocess

from harness import http_get, parse_exposition

FIXTURE_NAME = "alltypes.237mfs.prom.txt"


def metrics(base):
    """Self-metrics of a Vigil process as [(labels, float)]."""
    _, body = http_get(base + "/metrics")
    return [(l, float(v)) for l, v in parse_exposition(body.decode())]


def metric(base, name, **labels):
    """Sum of the series of `name` whose labels include `labels` (0 when absent)."""
    total = 0.0
    for l, v in metrics(base):
        if l.get("__name__") == name and all(l.get(k) == w for k, w in labels.items()):
            total += v
    return total


def agent_seqs(collector_base):
    """{agent_id: {"highest", "gaps", "duplicates"}} from the collector's /metrics."""
    names = {"vigil_ingest_agent_seq_highest": "highest", "vigil_ingest_agent_seq_gaps": "gaps",
             "vigil_ingest_agent_batches_duplicate_total": "duplicates"}
    out = {}
    for l, v in metrics(collector_base):
        key = names.get(l.get("__name__"))
        if key:
            out.setdefault(l["agent_id"], {"highest": 0, "gaps": 0, "duplicates": 0})[key] = int(v)
    return out


def stop(procs, name, sig=signal.SIGTERM, timeout=60):
    """Stop one process started by procs. SIGTERM must end it cleanly (exit 0);
    SIGKILL is expected to leave it dead. It is then forgotten by procs."""
    for i, (n, p, log) in enumerate(procs.procs):
        if n != name:
            continue
        p.send_signal(sig)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
            raise AssertionError("%s did not stop within %ds:\n%s" % (name, timeout, procs.log(name)[-3000:]))
        del procs.procs[i]
        log.close()
        if sig == signal.SIGTERM and p.returncode != 0:
            raise AssertionError("%s exited with %s:\n%s" % (name, p.returncode, procs.log(name)[-3000:]))
        return p.returncode
    raise AssertionError("no process named %s" % name)


def write_configs(d, **texts):
    """Write each text to <d>/<name>.yml; return {name: path}."""
    paths = {}
    for name, text in texts.items():
        paths[name] = os.path.join(d, name + ".yml")
        with open(paths[name], "w") as f:
            f.write(text)
    return paths


def agent_yaml(listen_port, node, data_dir, fixture_ports, output, extra=""):
    """An agent config scraping the fixture targets every second, host metrics off."""
    targets = ", ".join("'127.0.0.1:%d'" % p for p in fixture_ports)
    return ("agent: {listen: '127.0.0.1:%d', node: %s, tenant: default, data_dir: '%s'}\n"
            "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
            "scrape_configs:\n"
            "  - job_name: fixture\n"
            "    static_configs: [{targets: [%s]}]\n"
            "host_metrics: {enabled: false}\n"
            "output:\n%s%s" % (listen_port, node, data_dir, targets, output, extra))


def read_seq_file(data_dir):
    """The agent's persisted batch seq (highest delivered or spooled)."""
    with open(os.path.join(data_dir, "spool", "metrics", "batch_seq")) as f:
        return int(f.read().strip())
