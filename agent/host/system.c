/*
 * system.c - the one-value collectors: time, uname and entropy.
 *
 * time:    node_time_seconds (the collection's wall clock),
 *          node_time_zone_offset_seconds{time_zone} and the clock sources
 *          of <sys>/devices/system/clocksource/clocksourceN.
 * uname:   node_uname_info{sysname,release,version,machine,nodename,
 *          domainname} from the files of <proc>/sys/kernel, which hold what uname(2)
 *          returns (per UTS namespace) and lets tests use a fixture tree;
 *          a field whose file is missing falls back to uname(2).
 * entropy: node_entropy_available_bits and node_entropy_pool_size_bits.
 * Uptime is not a node_exporter metric: dashboards compute it as
 * node_time_seconds - node_boot_time_seconds (see cpu.c).
 */
#include <dirent.h>
#include <stdio.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>

#include "host_int.h"

void vg_host_parse_clocksource(vg_host_ctx *c, const char *device, const char *buf, size_t len,
                               int current)
{
    const char *cur = buf;
    vg_host_str line, f[32];
    char name[VG_HOST_MAX_NAME];
    const char *metric =
        current ? "node_time_clocksource_current_info" : "node_time_clocksource_available_info";
    if (!vg_host_next_line(&cur, buf + len, &line)) return;
    size_t nf = vg_host_fields(line, f, 32);
    for (size_t i = 0; i < nf && i < 32; i++) {
        if (!vg_host_strz(name, sizeof name, f[i])) {
            c->errors++;
            continue;
        }
        vg_label_t l[2] = {{"clocksource", name}, {"device", device}};
        vg_host_emit(c, metric, 1, l, 2);
    }
}

static void clocksources(vg_host_ctx *c)
{
    char dir[4096], rel[400], dev[32];
    snprintf(dir, sizeof dir, "%s/devices/system/clocksource", c->sys);
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned n;
        char extra;
        if (sscanf(e->d_name, "clocksource%u%c", &n, &extra) != 1) continue;
        snprintf(dev, sizeof dev, "%u", n);
        for (int cur = 0; cur < 2; cur++) {
            snprintf(rel, sizeof rel, "devices/system/clocksource/%s/%s_clocksource", e->d_name,
                     cur ? "current" : "available");
            if (!vg_host_read(c, c->sys, rel))
                vg_host_parse_clocksource(c, dev, c->file.data, c->file.len, cur);
        }
    }
    if (d) closedir(d);
}

vg_err_t vg_host_collect_time(vg_host_ctx *c)
{
    time_t now = (time_t)(c->ts_ms / 1000);
    struct tm tm;
    vg_host_emit(c, "node_time_seconds", (double)c->ts_ms / 1000.0, NULL, 0);
    if (localtime_r(&now, &tm))
        vg_host_emit1(c, "node_time_zone_offset_seconds", (double)tm.tm_gmtoff, "time_zone",
                      tm.tm_zone);
    clocksources(c);
    return VG_OK;
}

/* First line of <proc>/sys/kernel/<name> into out, else fallback. */
static const char *kernel_str(vg_host_ctx *c, const char *name, const char *fallback, char *out,
                              size_t cap)
{
    char rel[64];
    const char *cur;
    vg_host_str line;
    snprintf(rel, sizeof rel, "sys/kernel/%s", name);
    if (vg_host_read(c, c->proc, rel)) return fallback;
    cur = c->file.data;
    if (!vg_host_next_line(&cur, c->file.data + c->file.len, &line) ||
        !vg_host_strz(out, cap, line)) {
        c->errors++;
        return fallback;
    }
    return out;
}

vg_err_t vg_host_collect_uname(vg_host_ctx *c)
{
    struct utsname u;
    char v[6][VG_HOST_MAX_NAME];
    if (uname(&u)) memset(&u, 0, sizeof u);
    vg_label_t l[6] = {
        {"domainname", kernel_str(c, "domainname", u.domainname, v[0], sizeof v[0])},
        {"machine", kernel_str(c, "arch", u.machine, v[1], sizeof v[1])},
        {"nodename", kernel_str(c, "hostname", u.nodename, v[2], sizeof v[2])},
        {"release", kernel_str(c, "osrelease", u.release, v[3], sizeof v[3])},
        {"sysname", kernel_str(c, "ostype", u.sysname, v[4], sizeof v[4])},
        {"version", kernel_str(c, "version", u.version, v[5], sizeof v[5])},
    };
    vg_host_emit(c, "node_uname_info", 1, l, 6);
    return VG_OK;
}

static vg_err_t one_number(vg_host_ctx *c, const char *rel, const char *metric)
{
    const char *cur;
    vg_host_str line, f[2];
    uint64_t v;
    vg_err_t rc = vg_host_read(c, c->proc, rel);
    if (rc) return rc;
    cur = c->file.data;
    if (!vg_host_next_line(&cur, c->file.data + c->file.len, &line) ||
        vg_host_fields(line, f, 2) != 1 || !vg_host_u64(f[0], &v)) {
        c->errors++;
        return VG_OK;
    }
    vg_host_emit(c, metric, (double)v, NULL, 0);
    return VG_OK;
}

vg_err_t vg_host_collect_entropy(vg_host_ctx *c)
{
    vg_err_t rc = one_number(c, "sys/kernel/random/entropy_avail", "node_entropy_available_bits");
    if (!rc) rc = one_number(c, "sys/kernel/random/poolsize", "node_entropy_pool_size_bits");
    return rc;
}
