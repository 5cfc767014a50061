/*
 * netdev.c - /proc/net/dev as node_network_{receive,transmit}_<col>_total.
 *
 * The column names come from the file's second header line, split at '|'
 * into the receive and transmit groups, exactly as node_exporter's
 * /proc/net/dev reader names them (bytes, packets, errs, drop, fifo, frame,
 * compressed, multicast; colls and carrier on transmit), so a kernel that
 * adds a column adds a metric instead of shifting every value by one.
 */
#include <stdio.h>
#include <string.h>

#include "host_int.h"

#define NETDEV_MAX_COLS 16

typedef struct netdev_hdr {
    char rx[NETDEV_MAX_COLS][32], tx[NETDEV_MAX_COLS][32];
    size_t nrx, ntx;
} netdev_hdr;

static int header_group(vg_host_str g, char (*out)[32], size_t *n)
{
    vg_host_str f[NETDEV_MAX_COLS];
    *n = vg_host_fields(g, f, NETDEV_MAX_COLS);
    if (*n == 0 || *n > NETDEV_MAX_COLS) return 0;
    for (size_t i = 0; i < *n; i++) {
        if (!vg_host_strz(out[i], sizeof out[i], f[i])) return 0;
        for (const char *p = out[i]; *p; p++)
            if (!((*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') || *p == '_')) return 0;
    }
    return 1;
}

/* " face |bytes packets ...|bytes packets ..." */
static int parse_header(vg_host_str l, netdev_hdr *h)
{
    const char *a = memchr(l.p, '|', l.n);
    const char *b = a ? memchr(a + 1, '|', (size_t)(l.p + l.n - a - 1)) : NULL;
    if (!b || memchr(b + 1, '|', (size_t)(l.p + l.n - b - 1))) return 0;
    return header_group((vg_host_str){a + 1, (size_t)(b - a - 1)}, h->rx, &h->nrx) &&
           header_group((vg_host_str){b + 1, (size_t)(l.p + l.n - b - 1)}, h->tx, &h->ntx);
}

static void dev_line(vg_host_ctx *c, const netdev_hdr *h, vg_host_str l)
{
    const char *colon = memchr(l.p, ':', l.n);
    vg_host_str f[2 * NETDEV_MAX_COLS + 1], name[2];
    char dev[VG_HOST_MAX_NAME], metric[96];
    uint64_t v[2 * NETDEV_MAX_COLS];
    if (!colon || vg_host_fields((vg_host_str){l.p, (size_t)(colon - l.p)}, name, 2) != 1 ||
        !vg_host_strz(dev, sizeof dev, name[0])) {
        c->errors++;
        return;
    }
    size_t nf = vg_host_fields((vg_host_str){colon + 1, (size_t)(l.p + l.n - colon - 1)}, f,
                               2 * NETDEV_MAX_COLS + 1);
    if (nf != h->nrx + h->ntx) {
        c->errors++;
        return;
    }
    for (size_t i = 0; i < nf; i++)
        if (!vg_host_u64(f[i], &v[i])) {
            c->errors++;
            return;
        }
    for (size_t i = 0; i < nf; i++) {
        int rx = i < h->nrx;
        snprintf(metric, sizeof metric, "node_network_%s_%s_total", rx ? "receive" : "transmit",
                 rx ? h->rx[i] : h->tx[i - h->nrx]);
        vg_host_emit1(c, metric, (double)v[i], "device", dev);
    }
}

void vg_host_parse_netdev(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line;
    netdev_hdr h;
    if (!vg_host_next_line(&cur, end, &line) || !vg_host_next_line(&cur, end, &line) ||
        !parse_header(line, &h)) {
        c->errors++;
        return;
    }
    while (vg_host_next_line(&cur, end, &line))
        if (vg_host_fields(line, NULL, 0)) dev_line(c, &h, line);
}

vg_err_t vg_host_collect_netdev(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "net/dev", vg_host_parse_netdev);
}
