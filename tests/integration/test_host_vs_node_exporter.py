#!/usr/bin/env python3
"""Host metrics against the real prometheus-node-exporter on the same machine.

A vigil-agent with host_metrics on (and no scrape targets) ships to a
vigil-collector; prometheus-node-exporter runs beside them. The test passes
only when:

  * every metric name Vigil stores for job="node" (except the synthetic
    `up`) is one node_exporter exports, and each Vigil series carries
    exactly the label names node_exporter puts on that name (job and
    instance aside). Empty-valued labels in node_exporter's text are
    dropped first, as Prometheus drops them when it stores a sample;
  * Vigil has the core set dashboards need: CPU, memory, load, filesystem,
    disk, network, boot time and time, uname;
  * values that cannot move between the two reads agree: MemTotal, boot
    time, the set of CPUs, uname, and the disk and filesystem-type sets
    that both see.

It prints the names node_exporter has and Vigil lacks (information, not a
failure: node_exporter has ~40 collectors).
"""
import os
import shutil
import sys
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from harness import BUILD, Procs, api, free_port, parse_exposition, wait_until  # noqa: E402

CORE = [
    "node_cpu_seconds_total", "node_memory_MemTotal_bytes", "node_memory_MemAvailable_bytes",
    "node_load1", "node_load5", "node_load15",
    "node_filesystem_size_bytes", "node_filesystem_avail_bytes",
    "node_disk_read_bytes_total", "node_disk_written_bytes_total",
    "node_network_receive_bytes_total", "node_network_transmit_bytes_total",
    "node_boot_time_seconds", "node_time_seconds", "node_uname_info",
]
IGNORED = {"job", "instance", "__name__", "__value__"}


def node_exporter_bin():
    for name in ("prometheus-node-exporter", "node_exporter"):
        path = shutil.which(name)
        if path:
            return path
    raise AssertionError("prometheus-node-exporter is not installed (scripts/deps.sh installs it)")


def by_name(series):
    """{name: {frozenset(label names)}} and {name: [labels]} of a list of label dicts."""
    shapes, rows = {}, {}
    for labels in series:
        name = labels["__name__"]
        names = frozenset(k for k, v in labels.items() if k not in IGNORED and v != "")
        shapes.setdefault(name, set()).add(names)
        rows.setdefault(name, []).append(labels)
    return shapes, rows


def fetch_node_exporter(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port, timeout=30) as r:
        text = r.read().decode("utf-8")
    return [dict(labels, __value__=value) for labels, value in parse_exposition(text)]


def one_value(rows, name):
    vals = [float(r["__value__"]) for r in rows.get(name, [])]
    assert len(vals) == 1, "%s: expected one sample, got %r" % (name, vals)
    return vals[0]


def check_shapes(vigil, ne):
    problems = []
    for name, shapes in sorted(vigil.items()):
        if name == "up":
            continue
        if name not in ne:
            problems.append("%s: node_exporter does not export this name" % name)
            continue
        for s in shapes:
            if s not in ne[name]:
                problems.append("%s: labels %s, node_exporter has %s"
                                % (name, sorted(s), [sorted(x) for x in ne[name]]))
    return problems


def check_values(base, ne_rows, vrows):
    def query(q):
        return api(base, "/api/v1/query", query=q)["result"]

    mt = query('node_memory_MemTotal_bytes{job="node"}')
    assert len(mt) == 1 and float(mt[0]["value"][1]) == one_value(ne_rows, "node_memory_MemTotal_bytes"), \
        "MemTotal differs: vigil %r" % mt
    bt = query('node_boot_time_seconds{job="node"}')
    assert len(bt) == 1 and abs(float(bt[0]["value"][1]) - one_value(ne_rows, "node_boot_time_seconds")) <= 1, \
        "boot time differs: vigil %r" % bt

    def label_set(rows, name, label):
        return {r[label] for r in rows.get(name, []) if r.get(label)}

    for name, label in (("node_cpu_seconds_total", "cpu"), ("node_cpu_seconds_total", "mode"),
                        ("node_disk_reads_completed_total", "device"),
                        ("node_filesystem_size_bytes", "fstype")):
        v, n = label_set(vrows, name, label), label_set(ne_rows, name, label)
        if label == "fstype":  # Debian's node_exporter also hides /run, /mnt, /media
            assert n <= v, "%s{%s}: node_exporter has %s, vigil %s" % (name, label, n, v)
        else:
            assert v == n, "%s{%s}: vigil %s, node_exporter %s" % (name, label, v, n)
    vu, nu = vrows["node_uname_info"][0], ne_rows["node_uname_info"][0]
    for k in ("sysname", "release", "version", "machine", "nodename", "domainname"):
        assert vu.get(k, "") == nu.get(k, ""), "node_uname_info{%s}: vigil %r, node_exporter %r" % (
            k, vu.get(k), nu.get(k))


def stop_peer(procs, name):
    """Stop a peer that, like every Go binary, dies by SIGTERM (status -15,
    which Procs would report as an unclean exit of ours)."""
    for i, (n, p, log) in enumerate(procs.procs):
        if n == name:
            p.terminate()
            p.wait(timeout=30)
            log.close()
            del procs.procs[i]
            return


def write_configs(d, cport, aport):
    paths = {"agent": os.path.join(d, "agent.yml"), "collector": os.path.join(d, "collector.yml")}
    with open(paths["agent"], "w") as f:
        f.write("agent: {listen: '127.0.0.1:%d', node: it-host, data_dir: '%s/agent'}\n"
                "global: {scrape_interval: 1s, scrape_timeout: 1s}\n"
                "host_metrics: {enabled: true}\n"
                "output:\n  http: {url: 'http://127.0.0.1:%d'}\n" % (aport, d, cport))
    with open(paths["collector"], "w") as f:
        f.write("collector: {listen: '127.0.0.1:%d', data_dir: '%s/collector'}\n" % (cport, d))
    return paths


def main():
    with Procs() as procs:
        cport, aport, nport = free_port(), free_port(), free_port()
        cfg = write_configs(procs.dir, cport, aport)
        base = "http://127.0.0.1:%d" % cport
        procs.start("node_exporter", [node_exporter_bin(),
                                      "--web.listen-address=127.0.0.1:%d" % nport])
        procs.start("collector", [os.path.join(BUILD, "vigil-collector"), "--config", cfg["collector"]])
        procs.start("agent", [os.path.join(BUILD, "vigil-agent"), "--config", cfg["agent"]])

        try:
            def vigil_series():
                procs.check_alive()
                data = api(base, "/api/v1/series", **{"match[]": '{job="node"}'})
                names = {s["__name__"] for s in data}
                return data if all(n in names for n in CORE + ["up"]) else None

            series = wait_until("the core host metrics in the collector", vigil_series, timeout=120)

            def ne_up():
                procs.check_alive()
                try:
                    return fetch_node_exporter(nport)
                except OSError:
                    return None

            ne_samples = wait_until("node_exporter /metrics", ne_up, timeout=60)
            ne_shapes, ne_rows = by_name(ne_samples)
            v_shapes, _ = by_name(series)
            assert all(s.get("instance") == "it-host" for s in series), "instance is not agent.node"

            problems = check_shapes(v_shapes, ne_shapes)
            assert not problems, "%d mismatches with node_exporter:\n  %s" % (len(problems), "\n  ".join(problems))

            res = api(base, "/api/v1/query", query='{job="node"}')["result"]
            vrows = {}
            for r in res:
                vrows.setdefault(r["metric"]["__name__"], []).append(r["metric"])
            check_values(base, ne_rows, vrows)
            up = api(base, "/api/v1/query", query='up{job="node"}')["result"]
            assert len(up) == 1 and up[0]["value"][1] == "1", "up{job=\"node\"}: %r" % up

            missing = sorted(n for n in ne_shapes if n not in v_shapes and n.startswith("node_"))
            print("vigil: %d names, %d series; node_exporter: %d names; not in vigil (%d): %s"
                  % (len(v_shapes), len(series), len(ne_shapes), len(missing), " ".join(missing)))
            procs.check_alive()
        finally:
            stop_peer(procs, "node_exporter")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
