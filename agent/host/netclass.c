/*
 * netclass.c - the files of <sys>/class/net/<device> as node_network_* (link state).
 *
 * netdev.c has the traffic counters; this is node_exporter's netclass
 * collector: one small sysfs file per attribute, each a number (decimal or
 * 0x hex), exported under node_exporter's name for it, plus
 * node_network_up (operstate is "up") and node_network_info with the
 * address, broadcast, duplex, ifalias and operstate strings. An attribute
 * a driver does not implement (reading it fails, e.g. carrier or speed of a
 * link that is down) is simply absent, as upstream does it. Speed is Mbit/s
 * in sysfs and bytes/s here; -1 (unknown) is exported as -125000 like
 * node_exporter's default.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host_int.h"

static const struct {
    const char *file, *metric;
    double scale;
} attrs[] = {
    {"addr_assign_type", "node_network_address_assign_type", 1},
    {"carrier", "node_network_carrier", 1},
    {"carrier_changes", "node_network_carrier_changes_total", 1},
    {"carrier_up_count", "node_network_carrier_up_changes_total", 1},
    {"carrier_down_count", "node_network_carrier_down_changes_total", 1},
    {"dev_id", "node_network_device_id", 1},
    {"dormant", "node_network_dormant", 1},
    {"flags", "node_network_flags", 1},
    {"ifindex", "node_network_iface_id", 1},
    {"iflink", "node_network_iface_link", 1},
    {"link_mode", "node_network_iface_link_mode", 1},
    {"mtu", "node_network_mtu_bytes", 1},
    {"name_assign_type", "node_network_name_assign_type", 1},
    {"netdev_group", "node_network_net_dev_group", 1},
    {"speed", "node_network_speed_bytes", 1000.0 * 1000.0 / 8.0},
    {"tx_queue_len", "node_network_transmit_queue_length", 1},
    {"type", "node_network_protocol_type", 1},
};

/* First line of <sys>/class/net/<dev>/<file> into out; 0 when unreadable. */
static int attr_str(vg_host_ctx *c, const char *dev, const char *file, char *out, size_t cap)
{
    char rel[VG_HOST_MAX_NAME + 64];
    const char *cur;
    vg_host_str line;
    snprintf(rel, sizeof rel, "class/net/%s/%s", dev, file);
    if (vg_host_read(c, c->sys, rel)) return 0;
    cur = c->file.data;
    if (!vg_host_next_line(&cur, c->file.data + c->file.len, &line)) line.n = 0;
    if (!vg_host_strz(out, cap, line)) {
        c->errors++;
        return 0;
    }
    return 1;
}

/* Decimal or 0x hex, optionally negative, the whole string. */
int vg_host_parse_netclass_value(const char *s, double *v)
{
    char *end;
    if (!s[0] || strchr(s, ' ')) return 0;
    errno = 0;
    long long x = strtoll(s, &end, 0);
    if (*end || errno) return 0;
    *v = (double)x;
    return 1;
}

static void device(vg_host_ctx *c, const char *dev)
{
    char buf[VG_HOST_MAX_NAME], info[5][VG_HOST_MAX_NAME];
    static const char *const info_files[5] = {"address", "broadcast", "duplex", "ifalias",
                                              "operstate"};
    if (!attr_str(c, dev, "ifindex", buf, sizeof buf)) return; /* not an interface */
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        double v;
        if (!attr_str(c, dev, attrs[i].file, buf, sizeof buf)) continue;
        if (!vg_host_parse_netclass_value(buf, &v)) {
            c->errors++;
            continue;
        }
        vg_host_emit1(c, attrs[i].metric, v * attrs[i].scale, "device", dev);
    }
    for (int i = 0; i < 5; i++)
        if (!attr_str(c, dev, info_files[i], info[i], sizeof info[i])) info[i][0] = '\0';
    vg_label_t l[6] = {{"address", info[0]}, {"broadcast", info[1]}, {"device", dev},
                       {"duplex", info[2]},  {"ifalias", info[3]},   {"operstate", info[4]}};
    vg_host_emit(c, "node_network_info", 1, l, 6);
    vg_host_emit1(c, "node_network_up", !strcmp(info[4], "up"), "device", dev);
}

vg_err_t vg_host_collect_netclass(vg_host_ctx *c)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/class/net", c->sys);
    DIR *d = opendir(dir);
    if (!d) return VG_EIO;
    struct dirent *e;
    while ((e = readdir(d)))
        if (e->d_name[0] != '.' && strlen(e->d_name) < VG_HOST_MAX_NAME) device(c, e->d_name);
    closedir(d);
    return VG_OK;
}
