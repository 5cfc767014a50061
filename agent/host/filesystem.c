/*
 * filesystem.c - the mount table plus statvfs(3) as node_filesystem_*.
 *
 * Like node_exporter 1.5: read <proc>/1/mounts (the host's table when the
 * agent runs in a container with the host PID namespace), else
 * <proc>/self/mounts; drop the default excluded mount points and fs types;
 * un-escape \040 and \011 in mount points; a mount listed twice with the
 * same device, type and mount point is reported once. A mount that statvfs
 * cannot stat reports node_filesystem_device_error 1 and readonly only.
 * readonly comes from the "ro" mount option, as upstream does it.
 *
 * statvfs can block on a dead network mount; that blocks this collector's
 * thread only, never the scrape or ship threads.
 */
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>

#include "host_int.h"
#include "vigil/alloc.h"

typedef struct seen_set {
    uint64_t *h;
    size_t n, cap;
} seen_set;

/* 1 if the triple was already reported, else remember it (0). */
static int seen_before(seen_set *s, const vg_label_t *l)
{
    vg_label_t sorted[3] = {l[0], l[1], l[2]};
    vg_labels_sort(sorted, 3);
    uint64_t h = vg_labels_hash(sorted, 3);
    for (size_t i = 0; i < s->n; i++)
        if (s->h[i] == h) return 1;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        uint64_t *p = vg_realloc(s->h, cap * sizeof *p);
        if (!p) return 0; /* report a duplicate rather than drop a mount */
        s->h = p;
        s->cap = cap;
    }
    s->h[s->n++] = h;
    return 0;
}

/* fstab(5) escapes that node_exporter undoes in mount points. */
static void unescape(char *s)
{
    char *o = s;
    for (char *p = s; *p;) {
        if (!strncmp(p, "\\040", 4) || !strncmp(p, "\\011", 4)) {
            *o++ = p[2] == '4' ? ' ' : '\t';
            p += 4;
        } else {
            *o++ = *p++;
        }
    }
    *o = '\0';
}

static int has_ro(vg_host_str opts)
{
    size_t i = 0;
    while (i < opts.n) {
        size_t s = i;
        while (i < opts.n && opts.p[i] != ',') i++;
        if (i - s == 2 && !memcmp(opts.p + s, "ro", 2)) return 1;
        i++;
    }
    return 0;
}

static void stat_mount(vg_host_ctx *c, const vg_label_t *l, int ro)
{
    struct statvfs st;
    int r = c->statvfs ? c->statvfs(c->hook_ud, l[2].value, &st) : statvfs(l[2].value, &st);
    vg_host_emit(c, "node_filesystem_device_error", r != 0, l, 3);
    vg_host_emit(c, "node_filesystem_readonly", ro, l, 3);
    if (r != 0) return;
    double bs = (double)st.f_bsize;
    vg_host_emit(c, "node_filesystem_size_bytes", (double)st.f_blocks * bs, l, 3);
    vg_host_emit(c, "node_filesystem_free_bytes", (double)st.f_bfree * bs, l, 3);
    vg_host_emit(c, "node_filesystem_avail_bytes", (double)st.f_bavail * bs, l, 3);
    vg_host_emit(c, "node_filesystem_files", (double)st.f_files, l, 3);
    vg_host_emit(c, "node_filesystem_files_free", (double)st.f_ffree, l, 3);
}

void vg_host_parse_mounts(vg_host_ctx *c, const char *buf, size_t len)
{
    const char *cur = buf, *end = buf + len;
    vg_host_str line, f[4];
    char dev[VG_HOST_MAX_NAME * 4], mp[VG_HOST_MAX_NAME * 4], type[VG_HOST_MAX_NAME];
    seen_set seen = {0};
    while (vg_host_next_line(&cur, end, &line)) {
        size_t nf = vg_host_fields(line, f, 4);
        if (nf == 0) continue;
        if (nf < 4 || !vg_host_strz(dev, sizeof dev, f[0]) || !vg_host_strz(mp, sizeof mp, f[1]) ||
            !vg_host_strz(type, sizeof type, f[2])) {
            c->errors++;
            continue;
        }
        unescape(mp);
        if (vg_host_match(c, VG_HOST_RE_FS_MOUNTS, mp) ||
            vg_host_match(c, VG_HOST_RE_FS_TYPES, type))
            continue;
        vg_label_t l[3] = {{"device", dev}, {"fstype", type}, {"mountpoint", mp}};
        if (!seen_before(&seen, l)) stat_mount(c, l, has_ro(f[3]));
    }
    vg_free(seen.h);
}

vg_err_t vg_host_collect_filesystem(vg_host_ctx *c)
{
    vg_err_t rc = vg_host_read(c, c->proc, "1/mounts");
    if (rc) rc = vg_host_read(c, c->proc, "self/mounts");
    if (!rc) vg_host_parse_mounts(c, c->file.data, c->file.len);
    return rc;
}
