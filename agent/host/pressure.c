/*
 * pressure.c - /proc/pressure/{cpu,io,memory} (PSI) as node_pressure_*.
 *
 * Only the cumulative "total=" stall time (microseconds) is exported, as
 * seconds: the avg10/60/300 columns are rates PromQL computes better. Names
 * follow node_exporter 1.5: "some" is *_waiting_seconds_total, "full" is
 * *_stalled_seconds_total, and for cpu only "some" exists upstream.
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

static int total_of(const vg_host_str *f, size_t nf, uint64_t *v)
{
    for (size_t i = 1; i < nf; i++)
        if (f[i].n > 6 && !memcmp(f[i].p, "total=", 6))
            return vg_host_u64((vg_host_str){f[i].p + 6, f[i].n - 6}, v);
    return 0;
}

void vg_host_parse_pressure(vg_host_ctx *c, const char *resource, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[6];
    char name[96];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 6);
        uint64_t v;
        if (nf == 0) continue;
        int some = f[0].n == 4 && !memcmp(f[0].p, "some", 4);
        int full = f[0].n == 4 && !memcmp(f[0].p, "full", 4);
        if ((!some && !full) || nf > 6 || !total_of(f, nf, &v)) {
            c->errors++;
            continue;
        }
        if (full && !strcmp(resource, "cpu")) continue;
        snprintf(name, sizeof name, "node_pressure_%s_%s_seconds_total", resource,
                 some ? "waiting" : "stalled");
        vg_host_emit(c, name, (double)v / 1e6, NULL, 0);
    }
}

vg_err_t vg_host_collect_pressure(vg_host_ctx *c)
{
    static const char *const res[3] = {"cpu", "io", "memory"};
    char rel[32];
    for (int i = 0; i < 3; i++) {
        snprintf(rel, sizeof rel, "pressure/%s", res[i]);
        vg_err_t rc = vg_host_read(c, c->proc, rel);
        if (rc) return rc; /* no PSI in this kernel: the collector fails, as upstream */
        vg_host_parse_pressure(c, res[i], c->file.data, c->file.len);
    }
    return VG_OK;
}
