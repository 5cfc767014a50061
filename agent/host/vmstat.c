/*
 * vmstat.c - /proc/vmstat as node_vmstat_<field>, and /proc/sys/fs/file-nr
 * as node_filefd_allocated / node_filefd_maximum.
 *
 * vmstat has hundreds of fields; node_exporter exports only those its
 * default field regex keeps (page-ins/outs, swap-ins/outs, page faults,
 * OOM kills), and so do we: the names are what dashboards query, the rest
 * would be series nobody reads.
 */
#include <stdio.h>

#include "host_int.h"

void vg_host_parse_vmstat(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[3];
    char key[VG_HOST_MAX_NAME], name[VG_HOST_MAX_NAME + 16];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 3);
        double v;
        if (nf == 0) continue;
        if (nf != 2 || !vg_host_strz(key, sizeof key, f[0]) || !vg_host_double(f[1], &v)) {
            c->errors++;
            continue;
        }
        if (!vg_host_match(c, VG_HOST_RE_VMSTAT, key)) continue;
        snprintf(name, sizeof name, "node_vmstat_%s", key);
        vg_host_emit(c, name, v, NULL, 0);
    }
}

vg_err_t vg_host_collect_vmstat(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "vmstat", vg_host_parse_vmstat);
}

/* "751	0	2466177": allocated, free (always 0 since 2.6), maximum. */
void vg_host_parse_filefd(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf;
    vg_host_str line, f[3];
    uint64_t alloc, max;
    if (!vg_host_next_line(&cur, buf + len, &line) || vg_host_fields(line, f, 3) != 3 ||
        !vg_host_u64(f[0], &alloc) || !vg_host_u64(f[2], &max)) {
        c->errors++;
        return;
    }
    vg_host_emit(c, "node_filefd_allocated", (double)alloc, NULL, 0);
    vg_host_emit(c, "node_filefd_maximum", (double)max, NULL, 0);
}

vg_err_t vg_host_collect_filefd(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "sys/fs/file-nr", vg_host_parse_filefd);
}
