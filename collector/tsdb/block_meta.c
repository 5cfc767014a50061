/*
 * block_meta.c - meta.json, ULIDs and block directories.
 *
 * meta.json follows Prometheus's field names (ulid, minTime, maxTime, stats,
 * compaction, version) so tools that read them make sense of ours, plus a
 * "vigil" object with the resolution. It is parsed as untrusted input with a
 * size cap and type checks. ULIDs (48-bit ms time + 80 random bits,
 * Crockford base32) sort by creation time, which keeps listings in order.
 */
#include "tsdb/block.h"

#include <dirent.h>
#include <errno.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "vigil/alloc.h"

static const char b32[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

void vg_ulid_new(int64_t ms, char *buf)
{
    uint8_t rnd[10] = {0};
    if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd)) {
        uint64_t x = (uint64_t)ms ^ (uint64_t)(uintptr_t)buf ^ (uint64_t)getpid() << 20;
        for (size_t i = 0; i < sizeof(rnd); i++) rnd[i] ^= (uint8_t)(x >> (i % 8 * 8)) + (uint8_t)i;
    }
    uint64_t t = (uint64_t)ms & 0xffffffffffffULL;
    for (int i = 9; i >= 0; i--, t >>= 5) buf[i] = b32[t & 31];
    /* 80 random bits -> 16 chars: two 40-bit halves */
    for (int h = 0; h < 2; h++) {
        uint64_t r = 0;
        for (int i = 0; i < 5; i++) r = r << 8 | rnd[h * 5 + i];
        for (int i = 7; i >= 0; i--, r >>= 5) buf[10 + h * 8 + i] = b32[r & 31];
    }
    buf[VG_ULID_LEN] = 0;
}

static int ulid_valid(const char *s)
{
    if (strlen(s) != VG_ULID_LEN) return 0;
    for (size_t i = 0; i < VG_ULID_LEN; i++)
        if (!strchr(b32, s[i]) || !s[i]) return 0;
    return 1;
}

void vg_block_meta_clear(vg_block_meta *m)
{
    if (!m) return;
    vg_free(m->sources);
    m->sources = NULL;
    m->nsources = 0;
}

static int get_i64(json_t *o, const char *k, int64_t *out)
{
    json_t *v = o ? json_object_get(o, k) : NULL;
    if (!json_is_integer(v)) return 0;
    *out = (int64_t)json_integer_value(v);
    return 1;
}

static vg_err_t parse_sources(json_t *comp, vg_block_meta *m)
{
    json_t *src = json_object_get(comp, "sources");
    size_t n = json_is_array(src) ? json_array_size(src) : 0;
    if (!json_is_array(src) || n > 1000000) return VG_EPARSE;
    m->sources = vg_calloc(n ? n : 1, sizeof(*m->sources));
    if (!m->sources) return VG_ENOMEM;
    for (size_t i = 0; i < n; i++) {
        const char *s = json_string_value(json_array_get(src, i));
        if (!s || !ulid_valid(s)) return VG_EPARSE;
        memcpy(m->sources[i], s, VG_ULID_LEN + 1);
    }
    m->nsources = n;
    return VG_OK;
}

static vg_err_t parse_obj(json_t *root, vg_block_meta *m)
{
    const char *ulid = json_string_value(json_object_get(root, "ulid"));
    json_t *stats = json_object_get(root, "stats"), *comp = json_object_get(root, "compaction");
    int64_t s = 0, se = 0, c = 0, lvl = 0, ver = 0;
    if (!ulid || !ulid_valid(ulid) || !get_i64(root, "minTime", &m->mint) ||
        !get_i64(root, "maxTime", &m->maxt) || m->maxt < m->mint ||
        !get_i64(stats, "numSamples", &s) || !get_i64(stats, "numSeries", &se) ||
        !get_i64(stats, "numChunks", &c) || !get_i64(comp, "level", &lvl) ||
        !get_i64(root, "version", &ver) || s < 0 || se < 0 || c < 0 || lvl < 1 || lvl > 1000)
        return VG_EPARSE;
    memcpy(m->ulid, ulid, VG_ULID_LEN + 1);
    m->num_samples = (uint64_t)s;
    m->num_series = (uint64_t)se;
    m->num_chunks = (uint64_t)c;
    m->level = (int)lvl;
    m->resolution_ms = 0;
    get_i64(json_object_get(root, "vigil"), "resolution", &m->resolution_ms);
    if (m->resolution_ms < 0) return VG_EPARSE;
    return parse_sources(comp, m);
}

vg_err_t vg_block_meta_parse(const char *text, size_t len, vg_block_meta *m, vg_error *err)
{
    memset(m, 0, sizeof(*m));
    if (len > VG_BLOCK_META_MAX)
        return vg_error_set(err, VG_ETOOLARGE, "meta.json: over %u bytes", VG_BLOCK_META_MAX);
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!root) return vg_error_set(err, VG_ECORRUPT, "meta.json: %s", je.text);
    vg_err_t rc = json_is_object(root) ? parse_obj(root, m) : VG_EPARSE;
    json_decref(root);
    if (rc) vg_block_meta_clear(m);
    if (rc == VG_EPARSE) return vg_error_set(err, VG_ECORRUPT, "meta.json: missing or bad fields");
    return rc ? vg_error_set(err, rc, "meta.json: %s", vg_strerror(rc)) : VG_OK;
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int is_tmp(const char *n)
{
    size_t l = strlen(n);
    return l > 4 && strcmp(n + l - 4, ".tmp") == 0;
}

vg_err_t vg_block_list(const char *parent, char ***out, size_t *n, vg_error *err)
{
    *out = NULL;
    *n = 0;
    DIR *d = opendir(parent);
    if (!d) {
        if (errno == ENOENT) return VG_OK;
        return vg_error_set(err, VG_EIO, "%s: %s", parent, strerror(errno));
    }
    size_t cap = 16, k = 0;
    char **v = vg_malloc(cap * sizeof(char *) + cap * (VG_ULID_LEN + 1));
    struct dirent *e;
    while (v && (e = readdir(d))) {
        if (is_tmp(e->d_name) && e->d_name[0] != '.') {
            char path[4096];
            snprintf(path, sizeof(path), "%s/%s", parent, e->d_name);
            vg_block_rmdir(path);
        }
        if (!ulid_valid(e->d_name)) continue;
        if (k == cap) {
            char **nv = vg_malloc(2 * cap * sizeof(char *) + 2 * cap * (VG_ULID_LEN + 1));
            if (nv) {
                char *base = (char *)(nv + 2 * cap);
                for (size_t i = 0; i < k; i++)
                    nv[i] = memcpy(base + i * (VG_ULID_LEN + 1), v[i], VG_ULID_LEN + 1);
            }
            vg_free(v);
            v = nv;
            cap *= 2;
            if (!v) break;
        }
        v[k] = (char *)(v + cap) + k * (VG_ULID_LEN + 1);
        memcpy(v[k++], e->d_name, VG_ULID_LEN + 1);
    }
    closedir(d);
    if (!v) return vg_error_set(err, VG_ENOMEM, "out of memory listing %s", parent);
    qsort(v, k, sizeof(char *), name_cmp);
    *out = v;
    *n = k;
    return VG_OK;
}

static void rm_tree(const char *dir, int depth)
{
    DIR *d = opendir(dir);
    if (!d) return;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, "..")) continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode) && depth < 2)
            rm_tree(path, depth + 1);
        else
            unlink(path);
    }
    closedir(d);
    rmdir(dir);
}

vg_err_t vg_block_rmdir(const char *dir)
{
    rm_tree(dir, 0);
    return access(dir, F_OK) == 0 ? VG_EIO : VG_OK;
}
