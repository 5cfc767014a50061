/*
 * nflog.c - the notification log, in memory and in <data_dir>/nflog.
 *
 * Entries are few (one per group and receiver integration) and change only
 * when a notification was sent, so the whole log is kept in one array and
 * the file is rewritten on every change: write a temp file, fsync, rename,
 * fsync the directory. A crash leaves either the old or the new log, never
 * a torn one. The file is text, one entry per line, the key hex-encoded so
 * any byte of a group key survives:
 *
 *   vigil-nflog 1
 *   <key hex> <timestamp ms> <expires ms> <n> <hash>... <m> <hash>...
 */
#include "alerting/nflog.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "vigil/alloc.h"
#include "vigil/buf.h"
#include "vigil/log.h"

#define NFLOG_MAX_SET 100000

typedef struct nf_entry {
    char *key;
    int64_t ts, expires;
    uint64_t *firing, *resolved;
    size_t nf, nr;
} nf_entry;

struct vg_nflog {
    pthread_mutex_t mu;
    char *path; /* NULL = memory only */
    int64_t retention_ms;
    nf_entry *e;
    size_t n, cap;
};

static void entry_clear(nf_entry *e)
{
    vg_free(e->key);
    vg_free(e->firing);
    vg_free(e->resolved);
    memset(e, 0, sizeof(*e));
}

static nf_entry *find(vg_nflog_t *l, const char *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->e[i].key, key) == 0) return &l->e[i];
    return NULL;
}

static int has(const uint64_t *set, size_t n, uint64_t h)
{
    for (size_t i = 0; i < n; i++)
        if (set[i] == h) return 1;
    return 0;
}

/* Every element of sub is in set. */
static int subset(const uint64_t *set, size_t n, const uint64_t *sub, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (!has(set, n, sub[i])) return 0;
    return 1;
}

int vg_nflog_needs_update(vg_nflog_t *l, const char *key, const uint64_t *firing, size_t nf,
                          const uint64_t *resolved, size_t nr, int send_resolved, int64_t repeat_ms,
                          int64_t now_ms)
{
    pthread_mutex_lock(&l->mu);
    const nf_entry *e = find(l, key);
    int r;
    if (!e || e->expires <= now_ms)
        r = nf > 0;
    else if (!subset(e->firing, e->nf, firing, nf))
        r = 1;
    else if (nf == 0)
        r = e->nf > 0;
    else if (send_resolved && !subset(e->resolved, e->nr, resolved, nr))
        r = 1;
    else
        r = e->ts + repeat_ms < now_ms; /* strictly older, as Alertmanager */
    pthread_mutex_unlock(&l->mu);
    return r;
}

static void hex_key(FILE *f, const char *k)
{
    if (!*k) fputc('-', f); /* keeps an empty key a token */
    for (; *k; k++) fprintf(f, "%02x", (unsigned char)*k);
}

static void write_set(FILE *f, const uint64_t *s, size_t n)
{
    fprintf(f, " %zu", n);
    for (size_t i = 0; i < n; i++) fprintf(f, " %" PRIx64, s[i]);
}

static vg_err_t persist(vg_nflog_t *l, vg_error *err)
{
    if (!l->path) return VG_OK;
    char tmp[4200];
    snprintf(tmp, sizeof(tmp), "%s.tmp", l->path);
    FILE *f = fopen(tmp, "w");
    if (!f) return vg_error_set(err, VG_EIO, "nflog: cannot write %s: %s", tmp, strerror(errno));
    fprintf(f, "vigil-nflog 1\n");
    for (size_t i = 0; i < l->n; i++) {
        const nf_entry *e = &l->e[i];
        hex_key(f, e->key);
        fprintf(f, " %" PRId64 " %" PRId64, e->ts, e->expires);
        write_set(f, e->firing, e->nf);
        write_set(f, e->resolved, e->nr);
        fputc('\n', f);
    }
    int bad = fflush(f) != 0 || fsync(fileno(f)) != 0;
    bad |= fclose(f) != 0;
    if (bad || rename(tmp, l->path) != 0) {
        unlink(tmp);
        return vg_error_set(err, VG_EIO, "nflog: cannot replace %s: %s", l->path, strerror(errno));
    }
    char *slash = strrchr(l->path, '/');
    if (slash) {
        *slash = 0;
        int dfd = open(l->path, O_RDONLY | O_DIRECTORY);
        *slash = '/';
        if (dfd >= 0) {
            fsync(dfd);
            close(dfd);
        }
    }
    return VG_OK;
}

static uint64_t *copy_set(const uint64_t *s, size_t n)
{
    uint64_t *c = vg_malloc((n ? n : 1) * sizeof(*c));
    if (c && n) memcpy(c, s, n * sizeof(*c));
    return c;
}

/* Drop expired entries (caller holds the lock). */
static void expire(vg_nflog_t *l, int64_t now)
{
    size_t k = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->e[i].expires <= now)
            entry_clear(&l->e[i]);
        else
            l->e[k++] = l->e[i];
    }
    l->n = k;
}

static nf_entry *slot(vg_nflog_t *l, const char *key)
{
    nf_entry *e = find(l, key);
    if (e) return e;
    if (l->n == l->cap) {
        size_t nc = l->cap ? l->cap * 2 : 16;
        nf_entry *ne = vg_realloc(l->e, nc * sizeof(*ne));
        if (!ne) return NULL;
        l->e = ne;
        l->cap = nc;
    }
    e = &l->e[l->n];
    memset(e, 0, sizeof(*e));
    if (!(e->key = vg_strdup(key))) return NULL;
    l->n++;
    return e;
}

vg_err_t vg_nflog_log(vg_nflog_t *l, const char *key, const uint64_t *firing, size_t nf,
                      const uint64_t *resolved, size_t nr, int64_t now_ms, vg_error *err)
{
    vg_err_t rc = VG_OK;
    uint64_t *f = copy_set(firing, nf), *r = copy_set(resolved, nr);
    pthread_mutex_lock(&l->mu);
    expire(l, now_ms);
    nf_entry *e = f && r ? slot(l, key) : NULL;
    if (!e) {
        vg_free(f);
        vg_free(r);
        rc = vg_error_set(err, VG_ENOMEM, "nflog: out of memory");
        goto out;
    }
    vg_free(e->firing);
    vg_free(e->resolved);
    e->firing = f;
    e->nf = nf;
    e->resolved = r;
    e->nr = nr;
    e->ts = now_ms;
    e->expires = now_ms + l->retention_ms;
    rc = persist(l, err);
out:
    pthread_mutex_unlock(&l->mu);
    return rc;
}

size_t vg_nflog_count(vg_nflog_t *l)
{
    pthread_mutex_lock(&l->mu);
    size_t n = l->n;
    pthread_mutex_unlock(&l->mu);
    return n;
}

static int unhex(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* Read "<n> <hash>..." at *p. */
static int parse_set(char **p, uint64_t **out, size_t *n)
{
    char *end;
    unsigned long long cnt = strtoull(*p, &end, 10);
    if (end == *p || cnt > NFLOG_MAX_SET) return -1;
    *p = end;
    uint64_t *s = vg_malloc((cnt ? cnt : 1) * sizeof(*s));
    if (!s) return -1;
    for (size_t i = 0; i < cnt; i++) {
        s[i] = strtoull(*p, &end, 16);
        if (end == *p) {
            vg_free(s);
            return -1;
        }
        *p = end;
    }
    *out = s;
    *n = (size_t)cnt;
    return 0;
}

static int parse_line(char *line, nf_entry *e)
{
    char *sp = strchr(line, ' ');
    if (!sp) return -1;
    size_t hl = (size_t)(sp - line);
    if (hl == 1 && line[0] == '-') hl = 0;
    if (hl % 2) return -1;
    if (!(e->key = vg_malloc(hl / 2 + 1))) return -1;
    for (size_t i = 0; i < hl / 2; i++) {
        int a = unhex(line[2 * i]), b = unhex(line[2 * i + 1]);
        if (a < 0 || b < 0) return -1;
        e->key[i] = (char)(a * 16 + b);
    }
    e->key[hl / 2] = 0;
    char *p = sp, *end;
    e->ts = strtoll(p, &end, 10);
    if (end == p) return -1;
    p = end;
    e->expires = strtoll(p, &end, 10);
    if (end == p) return -1;
    p = end;
    if (parse_set(&p, &e->firing, &e->nf) || parse_set(&p, &e->resolved, &e->nr)) return -1;
    return 0;
}

static vg_err_t load(vg_nflog_t *l, vg_error *err)
{
    FILE *f = fopen(l->path, "r");
    if (!f)
        return errno == ENOENT ? VG_OK
                               : vg_error_set(err, VG_EIO, "nflog: cannot read %s: %s", l->path,
                                              strerror(errno));
    vg_err_t rc = VG_OK;
    char *line = NULL;
    size_t cap = 0, lineno = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) > 0) {
        lineno++;
        if (line[len - 1] == '\n') line[--len] = 0;
        if (lineno == 1) {
            if (strcmp(line, "vigil-nflog 1") != 0) goto corrupt;
            continue;
        }
        nf_entry e = {0};
        if (parse_line(line, &e) || !slot(l, e.key)) {
            entry_clear(&e);
            goto corrupt;
        }
        nf_entry *s = find(l, e.key);
        entry_clear(s);
        *s = e;
    }
    goto out;
corrupt:
    rc = vg_error_set(err, VG_ECORRUPT, "nflog: %s line %zu is corrupt; move the file away",
                      l->path, lineno);
out:
    free(line);
    fclose(f);
    return rc;
}

vg_err_t vg_nflog_open(const char *dir, int64_t retention_ms, vg_nflog_t **out, vg_error *err)
{
    *out = NULL;
    vg_nflog_t *l = vg_calloc(1, sizeof(*l));
    if (!l) return vg_error_set(err, VG_ENOMEM, "nflog: out of memory");
    pthread_mutex_init(&l->mu, NULL);
    l->retention_ms = retention_ms > 0 ? retention_ms : 120LL * 3600 * 1000;
    vg_err_t rc = VG_OK;
    if (dir) {
        vg_buf p;
        vg_buf_init(&p, 4096);
        if (vg_buf_printf(&p, "%s/nflog", dir)) {
            vg_buf_free(&p);
            rc = vg_error_set(err, VG_ETOOLARGE, "nflog: data dir path too long");
            goto fail;
        }
        l->path = vg_buf_steal(&p, NULL);
        if ((rc = load(l, err))) goto fail;
    }
    *out = l;
    return VG_OK;
fail:
    vg_nflog_free(l);
    return rc;
}

void vg_nflog_free(vg_nflog_t *l)
{
    if (!l) return;
    for (size_t i = 0; i < l->n; i++) entry_clear(&l->e[i]);
    vg_free(l->e);
    vg_free(l->path);
    pthread_mutex_destroy(&l->mu);
    vg_free(l);
}
