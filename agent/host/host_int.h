/*
 * host_int.h - internals shared by the host metrics collectors.
 *
 * One vg_host_ctx carries everything a collection needs: where /proc and
 * /sys are, the emit callback with the job/instance labels, the compiled
 * node_exporter filter regexes, one capped read buffer and the error count
 * of the collector that is running. Each collector file has a parser that
 * takes a whole file as (buf, len) and emits samples, so the fuzz harness
 * and the unit tests can call the parsers on bytes without touching /proc,
 * and a collect function that reads the real files and calls its parser.
 *
 * Parsers never trust their input: lines are bounded by len (NULs
 * included), numbers must parse completely, and a malformed line bumps
 * ctx->errors and is skipped.
 */
#ifndef VIGIL_AGENT_HOST_INT_H
#define VIGIL_AGENT_HOST_INT_H

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/statvfs.h>

#include "host.h"
#include "vigil/buf.h"
#include "vigil/labels.h"

/* Cap on one /proc or /sys file: /proc/self/mounts of a busy Kubernetes node
 * and /proc/stat of a many-core machine stay well below this. */
#define VG_HOST_MAX_FILE (4u << 20)
/* Longest metric name or label value a collector builds. */
#define VG_HOST_MAX_NAME 256

typedef struct vg_host_str {
    const char *p;
    size_t n;
} vg_host_str;

/* node_exporter's default filters (version 1.5), compiled once. */
enum {
    VG_HOST_RE_FS_MOUNTS, /* filesystem: excluded mount points */
    VG_HOST_RE_FS_TYPES,  /* filesystem: excluded fs types */
    VG_HOST_RE_DISK,      /* diskstats: excluded devices */
    VG_HOST_RE_VMSTAT,    /* vmstat: included fields */
    VG_HOST_RE_NETSTAT,   /* netstat: included fields */
    VG_HOST_RE__COUNT
};

typedef struct vg_host_ctx {
    vg_scrape_emit_fn emit; /* NULL: parse only (fuzzing) */
    void *ud;
    const char *job, *instance;
    const char *proc, *sys; /* roots, no trailing slash needed */
    int64_t ts_ms;          /* timestamp of this collection's samples */
    long page_size, clk_tck;
    int (*statvfs)(void *ud, const char *path, struct statvfs *out);
    void *hook_ud;
    pcre2_code *re[VG_HOST_RE__COUNT];
    pcre2_match_data *md;
    vg_buf file;     /* the file being parsed */
    uint64_t errors; /* malformed input and failed emits of the running collector */
    uint64_t samples;
} vg_host_ctx;

/* Compile the filters and set defaults (emit NULL, /proc, /sys, sysconf values). */
vg_err_t vg_host_ctx_init(vg_host_ctx *c, vg_error *err);
void vg_host_ctx_fini(vg_host_ctx *c);

/* ---- reading and tokenizing (procfs.c) ---- */
/* Read root/rel whole into c->file (capped at VG_HOST_MAX_FILE). VG_EIO when
 * it cannot be opened or read, VG_ETOOLARGE past the cap. */
vg_err_t vg_host_read(vg_host_ctx *c, const char *root, const char *rel);
/* A parser of one whole file. */
typedef void (*vg_host_parse_fn)(vg_host_ctx *c, const char *buf, size_t len);
/* vg_host_read, then fn over the bytes when the read worked. */
vg_err_t vg_host_read_parse(vg_host_ctx *c, const char *root, const char *rel, vg_host_parse_fn fn);
/* Next line of [*cur, end) without its '\n'; 0 at the end. */
int vg_host_next_line(const char **cur, const char *end, vg_host_str *line);
/* Split on spaces/tabs into at most max fields; returns how many there were
 * (may exceed max: the extra ones are not stored). */
size_t vg_host_fields(vg_host_str line, vg_host_str *f, size_t max);
/* Whole-string numbers: digits only for u64; finite decimal for double. */
int vg_host_u64(vg_host_str s, uint64_t *v);
int vg_host_double(vg_host_str s, double *v);
/* Copy s into dst (cap bytes) NUL-terminated; NULL when it does not fit or holds a NUL. */
char *vg_host_strz(char *dst, size_t cap, vg_host_str s);
/* Does the filter match anywhere in s (Go's MatchString)? */
int vg_host_match(vg_host_ctx *c, int re, const char *s);
/* Emit name{labels, job, instance} = v. Labels with empty values are left
 * out as Prometheus does; an invalid set or a failed emit counts an error. */
void vg_host_emit(vg_host_ctx *c, const char *name, double v, const vg_label_t *l, size_t n);
/* Emit with one label (name may be NULL for none). */
void vg_host_emit1(vg_host_ctx *c, const char *metric, double v, const char *lname,
                   const char *lvalue);

/* ---- parsers: a whole file's bytes in, samples out ---- */
void vg_host_parse_cpu(vg_host_ctx *c, const char *buf, size_t len);  /* /proc/stat */
void vg_host_parse_stat(vg_host_ctx *c, const char *buf, size_t len); /* /proc/stat */
void vg_host_parse_meminfo(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_loadavg(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_mounts(vg_host_ctx *c, const char *buf, size_t len); /* + statvfs */
void vg_host_parse_diskstats(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_netdev(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_vmstat(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_filefd(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_sockstat(vg_host_ctx *c, const char *buf, size_t len);
void vg_host_parse_pressure(vg_host_ctx *c, const char *resource, const char *buf, size_t len);
void vg_host_parse_netstat(vg_host_ctx *c, const char *buf, size_t len); /* netstat, snmp */
void vg_host_parse_snmp6(vg_host_ctx *c, const char *buf, size_t len);
/* A netclass attribute: decimal or 0x hex, maybe negative, nothing else. */
int vg_host_parse_netclass_value(const char *s, double *v);
void vg_host_parse_clocksource(vg_host_ctx *c, const char *device, const char *buf, size_t len,
                               int current);

/* ---- collectors: read the files, parse, return VG_OK when the source was there ---- */
typedef vg_err_t (*vg_host_collect_fn)(vg_host_ctx *c);
vg_err_t vg_host_collect_cpu(vg_host_ctx *c);
vg_err_t vg_host_collect_stat(vg_host_ctx *c);
vg_err_t vg_host_collect_meminfo(vg_host_ctx *c);
vg_err_t vg_host_collect_loadavg(vg_host_ctx *c);
vg_err_t vg_host_collect_filesystem(vg_host_ctx *c);
vg_err_t vg_host_collect_diskstats(vg_host_ctx *c);
vg_err_t vg_host_collect_netdev(vg_host_ctx *c);
vg_err_t vg_host_collect_netclass(vg_host_ctx *c);
vg_err_t vg_host_collect_vmstat(vg_host_ctx *c);
vg_err_t vg_host_collect_filefd(vg_host_ctx *c);
vg_err_t vg_host_collect_sockstat(vg_host_ctx *c);
vg_err_t vg_host_collect_pressure(vg_host_ctx *c);
vg_err_t vg_host_collect_netstat(vg_host_ctx *c);
vg_err_t vg_host_collect_entropy(vg_host_ctx *c);
vg_err_t vg_host_collect_time(vg_host_ctx *c);
vg_err_t vg_host_collect_uname(vg_host_ctx *c);

#endif
