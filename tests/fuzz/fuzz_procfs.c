/*
 * fuzz_procfs.c - libFuzzer harness for the host metrics parsers.
 *
 * Every input goes through every /proc and /sys parser (stat, meminfo,
 * loadavg, mounts, diskstats, net/dev, vmstat, file-nr, sockstat, PSI,
 * netstat/snmp, snmp6, clocksource, netclass values), since a real file may be any of them
 * after a kernel change. The emit callback reads every label so ASan sees a
 * label built from bytes past the input. statvfs is faked: mount points
 * here are fuzzer bytes, not paths worth touching. One context is built
 * once (the filter regexes compile once). Seeds: tests/data/fuzz/procfs/.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "host/host_int.h"

static vg_err_t touch(void *ud, const vg_label_t *l, size_t n, int64_t ts, double v)
{
    volatile size_t sink = 0;
    for (size_t i = 0; i < n; i++) sink += strlen(l[i].name) + strlen(l[i].value);
    (void)sink;
    return VG_OK;
}

static int fake_statvfs(void *ud, const char *path, struct statvfs *st)
{
    memset(st, 0, sizeof *st);
    st->f_bsize = 4096;
    st->f_blocks = strlen(path);
    return path[0] == '/' ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static vg_host_ctx c;
    static int ready;
    if (!ready) {
        if (vg_host_ctx_init(&c, NULL)) return 0;
        c.emit = touch;
        c.job = "node";
        c.instance = "fuzz";
        c.statvfs = fake_statvfs;
        ready = 1;
    }
    const char *b = (const char *)data;
    vg_host_parse_cpu(&c, b, size);
    vg_host_parse_stat(&c, b, size);
    vg_host_parse_meminfo(&c, b, size);
    vg_host_parse_loadavg(&c, b, size);
    vg_host_parse_mounts(&c, b, size);
    vg_host_parse_diskstats(&c, b, size);
    vg_host_parse_netdev(&c, b, size);
    vg_host_parse_vmstat(&c, b, size);
    vg_host_parse_filefd(&c, b, size);
    vg_host_parse_sockstat(&c, b, size);
    vg_host_parse_pressure(&c, "io", b, size);
    vg_host_parse_pressure(&c, "cpu", b, size);
    vg_host_parse_netstat(&c, b, size);
    vg_host_parse_snmp6(&c, b, size);
    vg_host_parse_clocksource(&c, "0", b, size, 1);
    char attr[64]; /* a netclass attribute is one short NUL-terminated line */
    double v;
    size_t n = size < sizeof attr - 1 ? size : sizeof attr - 1;
    memcpy(attr, b, n);
    attr[n] = '\0';
    (void)vg_host_parse_netclass_value(attr, &v);
    return 0;
}
