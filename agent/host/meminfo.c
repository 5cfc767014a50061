/*
 * meminfo.c - /proc/meminfo as node_memory_<Field>[_bytes].
 *
 * node_exporter's mangling, kept exactly because dashboards query these
 * names: the trailing ':' goes, a parenthesised part becomes an underscore
 * suffix ("Active(anon)" -> "Active_anon"), and a value with a unit column
 * (always kB) is multiplied by 1024 and named *_bytes, while unitless fields
 * (HugePages_Total) keep their name and value.
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

/* "Active(anon):" -> "Active_anon" into out; 0 when the key is not "Name:". */
static int mangle(vg_host_str k, char *out, size_t cap)
{
    if (k.n < 2 || k.p[k.n - 1] != ':' || k.n >= cap) return 0;
    size_t n = k.n - 1, o = 0;
    const char *open = memchr(k.p, '(', n), *close = NULL;
    for (size_t i = n; open && i > (size_t)(open - k.p); i--)
        if (k.p[i - 1] == ')') {
            close = k.p + i - 1;
            break;
        }
    for (size_t i = 0; i < n; i++) {
        const char *p = k.p + i;
        if (close && p == open)
            out[o++] = '_';
        else if (!(close && p == close))
            out[o++] = *p;
    }
    out[o] = '\0';
    return 1;
}

void vg_host_parse_meminfo(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[4];
    char key[VG_HOST_MAX_NAME], name[VG_HOST_MAX_NAME + 32];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 4);
        double v;
        if (nf == 0) continue; /* blank lines occur on some kernels */
        if (nf > 3 || nf < 2 || !mangle(f[0], key, sizeof key) || !vg_host_double(f[1], &v)) {
            c->errors++;
            continue;
        }
        if (nf == 3) v *= 1024;
        snprintf(name, sizeof name, "node_memory_%s%s", key, nf == 3 ? "_bytes" : "");
        vg_host_emit(c, name, v, NULL, 0);
    }
}

vg_err_t vg_host_collect_meminfo(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "meminfo", vg_host_parse_meminfo);
}
