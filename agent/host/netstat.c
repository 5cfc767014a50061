/*
 * netstat.c - /proc/net/netstat, /proc/net/snmp and /proc/net/snmp6 as
 * node_netstat_<Proto>_<Field>.
 *
 * netstat and snmp come in line pairs, a header "TcpExt: A B C" followed by
 * the values "TcpExt: 1 2 3"; snmp6 is one "Ip6InOctets 1" per line, split
 * after the first '6' into protocol and field as node_exporter does. Of the
 * several hundred fields only those node_exporter's default field regex
 * keeps are exported (errors, octets, TCP opens/segments/retransmits,
 * listen drops, UDP datagrams and buffer errors).
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

#define NETSTAT_MAX_FIELDS 512

static void emit_field(vg_host_ctx *c, vg_host_str proto, vg_host_str field, vg_host_str val)
{
    char key[VG_HOST_MAX_NAME], name[VG_HOST_MAX_NAME + 16];
    double v;
    if (proto.n + field.n + 2 > sizeof key || !vg_host_double(val, &v)) {
        c->errors++;
        return;
    }
    snprintf(key, sizeof key, "%.*s_%.*s", (int)proto.n, proto.p, (int)field.n, field.p);
    if (strlen(key) != proto.n + field.n + 1) { /* a NUL inside */
        c->errors++;
        return;
    }
    if (!vg_host_match(c, VG_HOST_RE_NETSTAT, key)) return;
    snprintf(name, sizeof name, "node_netstat_%s", key);
    vg_host_emit(c, name, v, NULL, 0);
}

static void pair(vg_host_ctx *c, vg_host_str head, vg_host_str vals)
{
    vg_host_str fa[NETSTAT_MAX_FIELDS], fb[NETSTAT_MAX_FIELDS]; /* 16 KiB of stack */
    size_t na = vg_host_fields(head, fa, NETSTAT_MAX_FIELDS);
    size_t nb = vg_host_fields(vals, fb, NETSTAT_MAX_FIELDS);
    if (na < 2 || na != nb || na > NETSTAT_MAX_FIELDS || fa[0].n < 2 ||
        fa[0].p[fa[0].n - 1] != ':' || fa[0].n != fb[0].n || memcmp(fa[0].p, fb[0].p, fa[0].n)) {
        c->errors++;
        return;
    }
    vg_host_str proto = {fa[0].p, fa[0].n - 1};
    for (size_t i = 1; i < na; i++) emit_field(c, proto, fa[i], fb[i]);
}

void vg_host_parse_netstat(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str head, vals;
    while (vg_host_next_line(&cur, end, &head)) {
        if (!vg_host_fields(head, NULL, 0)) continue;
        if (!vg_host_next_line(&cur, end, &vals)) {
            c->errors++;
            return;
        }
        pair(c, head, vals);
    }
}

void vg_host_parse_snmp6(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[3];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 3);
        if (nf == 0) continue;
        const char *six = nf == 2 ? memchr(f[0].p, '6', f[0].n) : NULL;
        if (!six) {
            c->errors++;
            continue;
        }
        size_t pn = (size_t)(six - f[0].p) + 1;
        emit_field(c, (vg_host_str){f[0].p, pn}, (vg_host_str){six + 1, f[0].n - pn}, f[1]);
    }
}

vg_err_t vg_host_collect_netstat(vg_host_ctx *c)
{
    vg_err_t rc = vg_host_read(c, c->proc, "net/netstat");
    if (!rc) vg_host_parse_netstat(c, c->file.data, c->file.len);
    if (!rc) rc = vg_host_read(c, c->proc, "net/snmp");
    if (!rc) vg_host_parse_netstat(c, c->file.data, c->file.len);
    if (!rc && !vg_host_read(c, c->proc, "net/snmp6")) /* no IPv6: no snmp6 */
        vg_host_parse_snmp6(c, c->file.data, c->file.len);
    return rc;
}
