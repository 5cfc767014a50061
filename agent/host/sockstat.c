/*
 * sockstat.c - /proc/net/sockstat{,6} as node_sockstat_<PROTO>_<field>.
 *
 * Each line is "PROTO: key value key value ...". node_exporter exports the
 * keys it knows (inuse, orphan, tw, alloc, mem, memory) and, because "mem"
 * counts pages, also <PROTO>_mem_bytes = mem * page size; plus
 * node_sockstat_sockets_used from the "sockets: used N" line. Unknown keys
 * are skipped rather than invented as new names.
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

static int known_key(const char *k)
{
    static const char *const keys[] = {"inuse", "orphan", "tw", "alloc", "mem", "memory"};
    for (size_t i = 0; i < sizeof keys / sizeof *keys; i++)
        if (!strcmp(k, keys[i])) return 1;
    return 0;
}

static void proto_line(vg_host_ctx *c, const char *proto, const vg_host_str *f, size_t nf)
{
    char key[32], name[VG_HOST_MAX_NAME];
    uint64_t v;
    if (nf % 2 != 1) {
        c->errors++;
        return;
    }
    for (size_t i = 1; i + 1 < nf; i += 2) {
        if (!vg_host_strz(key, sizeof key, f[i]) || !vg_host_u64(f[i + 1], &v)) {
            c->errors++;
            continue;
        }
        if (!strcmp(proto, "sockets")) {
            if (!strcmp(key, "used"))
                vg_host_emit(c, "node_sockstat_sockets_used", (double)v, NULL, 0);
            continue;
        }
        if (!known_key(key)) continue;
        snprintf(name, sizeof name, "node_sockstat_%s_%s", proto, key);
        vg_host_emit(c, name, (double)v, NULL, 0);
        if (strcmp(key, "mem")) continue;
        snprintf(name, sizeof name, "node_sockstat_%s_mem_bytes", proto);
        vg_host_emit(c, name, (double)v * (double)c->page_size, NULL, 0);
    }
}

void vg_host_parse_sockstat(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[16];
    char proto[64];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 16);
        if (nf == 0) continue;
        if (nf > 16 || f[0].n < 2 || f[0].p[f[0].n - 1] != ':' ||
            !vg_host_strz(proto, sizeof proto, (vg_host_str){f[0].p, f[0].n - 1})) {
            c->errors++;
            continue;
        }
        proto_line(c, proto, f, nf);
    }
}

vg_err_t vg_host_collect_sockstat(vg_host_ctx *c)
{
    vg_err_t rc = vg_host_read(c, c->proc, "net/sockstat");
    if (!rc) vg_host_parse_sockstat(c, c->file.data, c->file.len);
    /* IPv6 is optional: a kernel without it has no sockstat6 */
    if (!rc && !vg_host_read(c, c->proc, "net/sockstat6"))
        vg_host_parse_sockstat(c, c->file.data, c->file.len);
    return rc;
}
