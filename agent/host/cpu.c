/*
 * cpu.c - /proc/stat: node_exporter's "cpu" and "stat" collectors.
 *
 * The cpuN lines give per-CPU time in USER_HZ ticks; node_exporter exports
 * them as seconds in node_cpu_seconds_total{cpu,mode} (eight modes) and the
 * guest columns in node_cpu_guest_seconds_total{cpu,mode="user"|"nice"}.
 * The aggregate "cpu" line is not exported, as upstream does not. The other
 * lines become the node-wide counters and gauges of the stat collector.
 * Kernels older than 2.6.33 print fewer columns; missing ones read as 0.
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

static const char *const cpu_modes[8] = {"user",   "nice", "system",  "idle",
                                         "iowait", "irq",  "softirq", "steal"};

static void cpu_line(vg_host_ctx *c, const vg_host_str *f, size_t nf)
{
    char cpu[32];
    uint64_t t[10] = {0};
    if (!vg_host_strz(cpu, sizeof cpu, (vg_host_str){f[0].p + 3, f[0].n - 3}) || nf < 5 ||
        !vg_host_u64((vg_host_str){cpu, strlen(cpu)}, &t[0])) {
        c->errors++;
        return;
    }
    for (size_t i = 1; i < nf && i <= 10; i++)
        if (!vg_host_u64(f[i], &t[i - 1])) {
            c->errors++;
            return;
        }
    double hz = (double)c->clk_tck;
    for (int m = 0; m < 8; m++) {
        vg_label_t l[2] = {{"cpu", cpu}, {"mode", cpu_modes[m]}};
        vg_host_emit(c, "node_cpu_seconds_total", (double)t[m] / hz, l, 2);
    }
    vg_label_t g[2] = {{"cpu", cpu}, {"mode", "user"}};
    vg_host_emit(c, "node_cpu_guest_seconds_total", (double)t[8] / hz, g, 2);
    g[1].value = "nice";
    vg_host_emit(c, "node_cpu_guest_seconds_total", (double)t[9] / hz, g, 2);
}

void vg_host_parse_cpu(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[11];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 11);
        if (nf == 0 || f[0].n <= 3 || memcmp(f[0].p, "cpu", 3)) continue; /* "cpu" = total */
        cpu_line(c, f, nf > 11 ? 11 : nf);
    }
}

static const struct {
    const char *key, *metric;
} stat_keys[] = {
    {"intr", "node_intr_total"},
    {"ctxt", "node_context_switches_total"},
    {"btime", "node_boot_time_seconds"},
    {"processes", "node_forks_total"},
    {"procs_running", "node_procs_running"},
    {"procs_blocked", "node_procs_blocked"},
};

void vg_host_parse_stat(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[2];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 2);
        for (size_t k = 0; nf >= 1 && k < sizeof stat_keys / sizeof *stat_keys; k++) {
            if (f[0].n != strlen(stat_keys[k].key) || memcmp(f[0].p, stat_keys[k].key, f[0].n))
                continue;
            uint64_t v;
            if (nf < 2 || !vg_host_u64(f[1], &v))
                c->errors++;
            else
                vg_host_emit(c, stat_keys[k].metric, (double)v, NULL, 0);
        }
    }
}

vg_err_t vg_host_collect_cpu(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "stat", vg_host_parse_cpu);
}

vg_err_t vg_host_collect_stat(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "stat", vg_host_parse_stat);
}
