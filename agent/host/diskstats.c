/*
 * diskstats.c - /proc/diskstats as node_disk_*{device}.
 *
 * Columns after "major minor name" are a fixed sequence that grew with
 * kernels: 11 up to 4.17, then discards (4.18) and flushes (5.5). The table
 * below maps each column to node_exporter's name and unit: sectors are 512
 * bytes whatever the device's sector size (the kernel counts in 512-byte
 * units), times are milliseconds turned into seconds. Columns a kernel does
 * not print are not exported. Partitions and virtual devices are dropped by
 * node_exporter's default device regex. node_disk_info carries device,
 * major and minor; node_exporter adds model, serial, path, wwn and revision
 * from the udev database, which this build does not read (empty there too
 * when /run/udev is absent, and empty labels are no labels in Prometheus).
 */
#include <string.h>

#include "host_int.h"

static const struct {
    const char *name;
    double scale;
} disk_cols[17] = {
    {"node_disk_reads_completed_total", 1},
    {"node_disk_reads_merged_total", 1},
    {"node_disk_read_bytes_total", 512},
    {"node_disk_read_time_seconds_total", 0.001},
    {"node_disk_writes_completed_total", 1},
    {"node_disk_writes_merged_total", 1},
    {"node_disk_written_bytes_total", 512},
    {"node_disk_write_time_seconds_total", 0.001},
    {"node_disk_io_now", 1},
    {"node_disk_io_time_seconds_total", 0.001},
    {"node_disk_io_time_weighted_seconds_total", 0.001},
    {"node_disk_discards_completed_total", 1},
    {"node_disk_discards_merged_total", 1},
    {"node_disk_discarded_sectors_total", 1},
    {"node_disk_discard_time_seconds_total", 0.001},
    {"node_disk_flush_requests_total", 1},
    {"node_disk_flush_requests_time_seconds_total", 0.001},
};

static void disk_line(vg_host_ctx *c, const vg_host_str *f, size_t nf)
{
    char dev[VG_HOST_MAX_NAME];
    uint64_t v[17];
    size_t ncol = nf - 3;
    if (ncol > 17) ncol = 17;
    char maj[24], min[24];
    uint64_t x;
    if (!vg_host_strz(dev, sizeof dev, f[2]) || !vg_host_u64(f[0], &x) || !vg_host_u64(f[1], &x) ||
        !vg_host_strz(maj, sizeof maj, f[0]) || !vg_host_strz(min, sizeof min, f[1])) {
        c->errors++;
        return;
    }
    for (size_t i = 0; i < ncol; i++)
        if (!vg_host_u64(f[3 + i], &v[i])) {
            c->errors++;
            return;
        }
    if (vg_host_match(c, VG_HOST_RE_DISK, dev)) return;
    /* whole groups only: 11, 15 or 17 columns */
    size_t emit = ncol >= 17 ? 17 : ncol >= 15 ? 15 : 11;
    vg_label_t info[3] = {{"device", dev}, {"major", maj}, {"minor", min}};
    vg_host_emit(c, "node_disk_info", 1, info, 3);
    for (size_t i = 0; i < emit; i++)
        vg_host_emit1(c, disk_cols[i].name, (double)v[i] * disk_cols[i].scale, "device", dev);
}

void vg_host_parse_diskstats(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[24];
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 24);
        if (nf == 0) continue;
        if (nf < 14) {
            c->errors++;
            continue;
        }
        disk_line(c, f, nf > 24 ? 24 : nf);
    }
}

vg_err_t vg_host_collect_diskstats(vg_host_ctx *c)
{
    return vg_host_read_parse(c, c->proc, "diskstats", vg_host_parse_diskstats);
}
