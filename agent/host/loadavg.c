/*
 * loadavg.c - /proc/loadavg as node_load1, node_load5 and node_load15.
 *
 * Only the first line counts ("0.11 0.31 0.52 1/207 6623"); the run-queue
 * and last-pid columns are not exported by node_exporter either.
 */
#include "host_int.h"

void vg_host_parse_loadavg(vg_host_ctx *c, const char *buf, size_t len)
{
    static const char *const names[3] = {"node_load1", "node_load5", "node_load15"};
    const char *cur = buf;
    vg_host_str line, f[3];
    double v[3];
    if (!vg_host_next_line(&cur, buf + len, &line) || vg_host_fields(line, f, 3) < 3) {
        c->errors++;
        return;
    }
    for (int i = 0; i < 3; i++)
        if (!vg_host_double(f[i], &v[i])) {
            c->errors++;
            return;
        }
    for (int i = 0; i < 3; i++) vg_host_emit(c, names[i], v[i], NULL, 0);
}

vg_err_t vg_host_collect_loadavg(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "loadavg", vg_host_parse_loadavg);
}
