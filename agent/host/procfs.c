/*
 * procfs.c - the shared ground of the host collectors: reading /proc and
 * /sys files into one capped buffer, splitting lines and fields without
 * trusting the bytes, strict number parsing, node_exporter's filter regexes,
 * and the one emit path that adds job/instance, sorts and validates.
 *
 * /proc files report a size of 0, so a file is read until EOF rather than
 * by st_size; the cap keeps a bad mount table or a fuzzed fixture from
 * eating memory. Tokenizing works on (pointer, length) slices bounded by the
 * buffer, so an embedded NUL or a missing final newline cannot run a parser
 * off the end.
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "host_int.h"

/* Upstream node_exporter 1.5 defaults (collector/filesystem_linux.go,
 * diskstats_linux.go, vmstat_linux.go, netstat_linux.go). Debian's package
 * patches two of them (it also excludes /run, /mnt and /media, and the "lo"
 * network device); we follow upstream, which is what the official binaries,
 * images and charts ship and what the public dashboards assume. */
static const char *const filters[VG_HOST_RE__COUNT] = {
    [VG_HOST_RE_FS_MOUNTS] =
        "^/(dev|proc|run/credentials/.+|sys|var/lib/docker/.+|var/lib/containers/storage/.+)($|/)",
    [VG_HOST_RE_FS_TYPES] =
        "^(autofs|binfmt_misc|bpf|cgroup2?|configfs|debugfs|devpts|devtmpfs|fusectl|hugetlbfs|"
        "iso9660|mqueue|nsfs|overlay|proc|procfs|pstore|rpc_pipefs|securityfs|selinuxfs|squashfs|"
        "sysfs|tracefs)$",
    [VG_HOST_RE_DISK] = "^(ram|loop|fd|(h|s|v|xv)d[a-z]|nvme\\d+n\\d+p)\\d+$",
    [VG_HOST_RE_VMSTAT] = "^(oom_kill|pgpg|pswp|pg.*fault).*",
    [VG_HOST_RE_NETSTAT] =
        "^(.*_(InErrors|InErrs)|Ip_Forwarding|Ip(6|Ext)_(InOctets|OutOctets)|Icmp6?_(InMsgs|"
        "OutMsgs)|TcpExt_(Listen.*|Syncookies.*|TCPSynRetrans|TCPTimeouts)|Tcp_(ActiveOpens|"
        "InSegs|OutSegs|OutRsts|PassiveOpens|RetransSegs|CurrEstab)|Udp6?_(InDatagrams|"
        "OutDatagrams|NoPorts|RcvbufErrors|SndbufErrors))$",
};

vg_err_t vg_host_ctx_init(vg_host_ctx *c, vg_error *err)
{
    memset(c, 0, sizeof *c);
    c->proc = "/proc";
    c->sys = "/sys";
    c->page_size = sysconf(_SC_PAGESIZE);
    c->clk_tck = sysconf(_SC_CLK_TCK);
    if (c->clk_tck <= 0) c->clk_tck = 100;
    vg_buf_init(&c->file, VG_HOST_MAX_FILE);
    for (int i = 0; i < VG_HOST_RE__COUNT; i++) {
        int ec;
        PCRE2_SIZE off;
        c->re[i] = pcre2_compile((PCRE2_SPTR)filters[i], PCRE2_ZERO_TERMINATED, 0, &ec, &off, NULL);
        if (!c->re[i]) {
            vg_host_ctx_fini(c);
            return vg_error_set(err, VG_EINTERNAL, "host: filter %d does not compile at %zu", i,
                                (size_t)off);
        }
        pcre2_jit_compile(c->re[i], PCRE2_JIT_COMPLETE); /* falls back to the interpreter */
    }
    if (!(c->md = pcre2_match_data_create(8, NULL))) {
        vg_host_ctx_fini(c);
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    return VG_OK;
}

void vg_host_ctx_fini(vg_host_ctx *c)
{
    for (int i = 0; i < VG_HOST_RE__COUNT; i++) pcre2_code_free(c->re[i]);
    pcre2_match_data_free(c->md);
    vg_buf_free(&c->file);
    memset(c->re, 0, sizeof c->re);
    c->md = NULL;
}

vg_err_t vg_host_read(vg_host_ctx *c, const char *root, const char *rel)
{
    char path[4096];
    vg_buf_reset(&c->file);
    if ((size_t)snprintf(path, sizeof path, "%s/%s", root, rel) >= sizeof path) return VG_EINVAL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return VG_EIO;
    vg_err_t rc = VG_OK;
    for (;;) {
        size_t room = c->file.max - c->file.len, want = room < 65536 ? room : 65536;
        if (room == 0) { /* full: one more byte means the file is over the cap */
            char x;
            ssize_t n = read(fd, &x, 1);
            rc = n > 0 ? VG_ETOOLARGE : n < 0 ? VG_EIO : VG_OK;
            break;
        }
        if ((rc = vg_buf_reserve(&c->file, want))) break;
        ssize_t n = read(fd, c->file.data + c->file.len, want);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) rc = VG_EIO;
        if (n <= 0) break;
        c->file.len += (size_t)n;
    }
    if (c->file.data) c->file.data[c->file.len] = '\0';
    close(fd);
    if (rc == VG_ETOOLARGE) c->errors++;
    return rc;
}

vg_err_t vg_host_read_parse(vg_host_ctx *c, const char *root, const char *rel, vg_host_parse_fn fn)
{
    vg_err_t rc = vg_host_read(c, root, rel);
    if (!rc) fn(c, c->file.data, c->file.len);
    return rc;
}

int vg_host_next_line(const char **cur, const char *end, vg_host_str *line)
{
    if (*cur >= end) return 0;
    const char *nl = memchr(*cur, '\n', (size_t)(end - *cur));
    line->p = *cur;
    line->n = (size_t)((nl ? nl : end) - *cur);
    *cur = nl ? nl + 1 : end;
    return 1;
}

size_t vg_host_fields(vg_host_str line, vg_host_str *f, size_t max)
{
    size_t n = 0, i = 0;
    while (i < line.n) {
        while (i < line.n && (line.p[i] == ' ' || line.p[i] == '\t')) i++;
        if (i == line.n) break;
        size_t s = i;
        while (i < line.n && line.p[i] != ' ' && line.p[i] != '\t') i++;
        if (n < max) f[n] = (vg_host_str){line.p + s, i - s};
        n++;
    }
    return n;
}

int vg_host_u64(vg_host_str s, uint64_t *v)
{
    uint64_t x = 0;
    if (s.n == 0 || s.n > 20) return 0;
    for (size_t i = 0; i < s.n; i++) {
        unsigned d = (unsigned char)s.p[i] - '0';
        if (d > 9 || x > (UINT64_MAX - d) / 10) return 0;
        x = x * 10 + d;
    }
    *v = x;
    return 1;
}

int vg_host_double(vg_host_str s, double *v)
{
    char tmp[64], *end;
    if (s.n == 0 || s.n >= sizeof tmp) return 0;
    for (size_t i = 0; i < s.n; i++) /* plain decimals only: no inf, nan or hex */
        if (!strchr("0123456789.-+eE", s.p[i]) || !s.p[i]) return 0;
    memcpy(tmp, s.p, s.n);
    tmp[s.n] = '\0';
    errno = 0;
    double d = strtod(tmp, &end);
    if (end != tmp + s.n || !isfinite(d)) return 0;
    *v = d;
    return 1;
}

char *vg_host_strz(char *dst, size_t cap, vg_host_str s)
{
    if (s.n >= cap || memchr(s.p, '\0', s.n)) return NULL;
    memcpy(dst, s.p, s.n);
    dst[s.n] = '\0';
    return dst;
}

int vg_host_match(vg_host_ctx *c, int re, const char *s)
{
    return pcre2_match(c->re[re], (PCRE2_SPTR)s, strlen(s), 0, 0, c->md, NULL) >= 0;
}

void vg_host_emit(vg_host_ctx *c, const char *name, double v, const vg_label_t *l, size_t n)
{
    vg_label_t set[12];
    size_t k = 0;
    vg_error err;
    if (n > 9) {
        c->errors++;
        return;
    }
    set[k++] = (vg_label_t){VG_METRIC_NAME, name};
    if (c->job && c->job[0]) set[k++] = (vg_label_t){"job", c->job};
    if (c->instance && c->instance[0]) set[k++] = (vg_label_t){"instance", c->instance};
    for (size_t i = 0; i < n; i++)
        if (l[i].value && l[i].value[0]) set[k++] = l[i];
    vg_labels_sort(set, k);
    if (vg_labels_validate(set, k, &err)) {
        c->errors++;
        return;
    }
    c->samples++;
    if (c->emit && c->emit(c->ud, set, k, c->ts_ms, v)) c->errors++;
}

void vg_host_emit1(vg_host_ctx *c, const char *metric, double v, const char *lname,
                   const char *lvalue)
{
    vg_label_t l = {lname, lvalue};
    vg_host_emit(c, metric, v, &l, lname ? 1 : 0);
}
