/*
 * query.c - GET /api/v1/audit/query's engine: filter by tenant, user_id,
 * action, result and time, newest first, paged by cursor; and tier stats.
 *
 * Records are ordered by (ts_ms, dedup key) descending. The key makes the
 * order total and stable while hours are sealed, moved and recompressed
 * underneath a pager, so a cursor is just the last (ts, key) returned.
 * Segments are pruned by their time range, filtered with their index, and
 * only the frames holding the page's records are decompressed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "auditstore/auditstore_int.h"
#include "auditstore/chain.h"
#include "vigil/alloc.h"

#define MAX_CANDIDATES (4u << 20)
#define MAX_LIMIT      10000

struct cand {
    int64_t ts;
    uint64_t key;
    int32_t src; /* segment index, or -1 - open line index */
    uint32_t ord;
};

struct qstate {
    const vg_audit_query *q;
    int64_t cts;
    uint64_t ckey;
    int has_cursor;
    int more;         /* candidates were trimmed: there is a next page */
    int64_t floor_ts; /* with n >= limit: the lowest ts still on the page */
    struct cand *c;
    size_t n, cap;
    vg_aseg_t **segs;
    size_t nseg, segcap;
    char **open; /* copies of open records' lines */
    size_t nopen, opencap;
};

static int cand_cmp(const void *a, const void *b)
{
    const struct cand *x = a, *y = b;
    if (x->ts != y->ts) return x->ts > y->ts ? -1 : 1;
    return x->key > y->key ? -1 : x->key < y->key;
}

static int in_range(const struct qstate *st, int64_t ts, uint64_t key)
{
    if (st->q->from_ms && ts < st->q->from_ms) return 0;
    if (st->q->to_ms && ts > st->q->to_ms) return 0;
    if (st->has_cursor && (ts > st->cts || (ts == st->cts && key >= st->ckey))) return 0;
    return 1;
}

static vg_err_t add_cand(struct qstate *st, int64_t ts, uint64_t key, int32_t src, uint32_t ord)
{
    if (st->n == st->cap) {
        if (st->cap >= MAX_CANDIDATES) return VG_ETOOLARGE;
        size_t nc = st->cap ? st->cap * 2 : 256;
        struct cand *c = vg_realloc(st->c, nc * sizeof(*c));
        if (!c) return VG_ENOMEM;
        st->c = c, st->cap = nc;
    }
    st->c[st->n++] = (struct cand){ts, key, src, ord};
    return VG_OK;
}

static const char *qfield(const vg_audit_query *q, int f)
{
    const char *v = f == VG_AFIELD_USER     ? q->user_id
                    : f == VG_AFIELD_ACTION ? q->action
                                            : q->result;
    return v && *v ? v : NULL;
}

/* Bitmap of records of seg matching the field filters (NULL = all). */
static vg_err_t seg_matches(const struct qstate *st, const vg_aseg_t *seg, uint8_t **out)
{
    *out = NULL;
    size_t nb = vg_aseg_count(seg) / 8 + 1;
    uint8_t *m = NULL, *t = NULL;
    for (int f = 0; f < VG_AFIELD__N; f++) {
        const char *v = qfield(st->q, f);
        if (!v) continue;
        const uint32_t *ords;
        size_t n;
        vg_aseg_lookup(seg, f, v, &ords, &n);
        if (!t && !(t = vg_malloc(nb))) goto nomem;
        memset(t, 0, nb);
        for (size_t i = 0; i < n; i++) t[ords[i] / 8] |= (uint8_t)(1u << (ords[i] % 8));
        if (!m)
            m = t, t = NULL;
        else
            for (size_t i = 0; i < nb; i++) m[i] &= t[i];
    }
    vg_free(t);
    *out = m;
    return VG_OK;
nomem:
    vg_free(m);
    return VG_ENOMEM;
}

static vg_err_t scan_segment(struct qstate *st, vg_aseg_t *seg)
{
    const vg_audit_query *q = st->q;
    if ((q->from_ms && vg_aseg_max_ts(seg) < q->from_ms) ||
        (q->to_ms && vg_aseg_min_ts(seg) > q->to_ms) ||
        (st->has_cursor && vg_aseg_min_ts(seg) > st->cts) || !vg_aseg_count(seg)) {
        vg_aseg_free(seg);
        return VG_OK;
    }
    if (st->nseg == st->segcap) {
        size_t nc = st->segcap ? st->segcap * 2 : 16;
        vg_aseg_t **ns = vg_realloc(st->segs, nc * sizeof(*ns));
        if (!ns) {
            vg_aseg_free(seg);
            return VG_ENOMEM;
        }
        st->segs = ns, st->segcap = nc;
    }
    st->segs[st->nseg++] = seg;
    uint8_t *m = NULL;
    vg_err_t rc = seg_matches(st, seg, &m);
    for (size_t i = 0; i < vg_aseg_count(seg) && !rc; i++) {
        if (m && !(m[i / 8] >> (i % 8) & 1)) continue;
        int64_t ts = vg_aseg_ts(seg, i);
        uint64_t key = vg_aseg_key(seg, i);
        if (in_range(st, ts, key)) rc = add_cand(st, ts, key, (int32_t)(st->nseg - 1), (uint32_t)i);
    }
    vg_free(m);
    return rc;
}

struct segref {
    int64_t hour;
    int tier;
    const char *name;
};

static int segref_cmp(const void *a, const void *b)
{
    const struct segref *x = a, *y = b;
    return x->hour > y->hour ? -1 : x->hour < y->hour;
}

/* Can a segment of this hour hold a record for this page (1), only for a
 * later page (2), or for none (0)? Its records all lie in [hour, hour + 1h). */
static int hour_wanted(const struct qstate *st, int64_t hour, size_t limit)
{
    int64_t last = hour + VG_AUDIT_HOUR_MS - 1;
    if (hour < 0) return 1; /* unknown name: look inside */
    if ((st->q->from_ms && last < st->q->from_ms) || (st->q->to_ms && hour > st->q->to_ms))
        return 0;
    if (st->has_cursor && hour > st->cts) return 0;
    return st->n >= limit && last < st->floor_ts ? 2 : 1; /* 2: only for a later page */
}

/* Keep only the best limit candidates; their lowest ts bounds what is still needed. */
static void trim(struct qstate *st, size_t limit)
{
    if (st->n < limit) return;
    qsort(st->c, st->n, sizeof(*st->c), cand_cmp);
    st->more |= st->n > limit;
    st->n = limit;
    st->floor_ts = st->c[limit - 1].ts;
}

static vg_err_t list_all(vg_auditstore_t *s, const char *tenant, char **names[3], size_t nn[3],
                         struct segref **refs, size_t *nref, vg_error *err)
{
    vg_err_t rc = VG_OK;
    size_t total = 0;
    for (int t = 0; t < 3 && !rc; t++)
        rc = vg_audit_list_segments(s->dir, tenant, t, &names[t], &nn[t], err);
    for (int t = 0; t < 3; t++) total += nn[t];
    *refs = rc ? NULL : vg_calloc(total + 1, sizeof(**refs));
    if (!rc && !*refs) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    for (int t = 0; t < 3 && !rc; t++)
        for (size_t i = 0; i < nn[t]; i++)
            (*refs)[(*nref)++] = (struct segref){vg_audit_name_hour(names[t][i]), t, names[t][i]};
    if (!rc && *nref) qsort(*refs, *nref, sizeof(**refs), segref_cmp);
    return rc;
}

static vg_err_t scan_segments(vg_auditstore_t *s, struct qstate *st, size_t limit, vg_error *err)
{
    char **names[3] = {0}, dir[1024], p[1200];
    size_t nn[3] = {0}, nref = 0;
    struct segref *refs = NULL;
    vg_err_t rc = list_all(s, st->q->tenant, names, nn, &refs, &nref, err);
    trim(st, limit);
    for (size_t i = 0; i < nref && !rc; i++) {
        int w = hour_wanted(st, refs[i].hour, limit);
        st->more |= w == 2;
        if (w != 1) continue;
        vg_aseg_t *seg = NULL;
        vg_audit_path(s->dir, st->q->tenant, vg_audit_tiers[refs[i].tier], dir, sizeof(dir));
        snprintf(p, sizeof(p), "%s/%s", dir, refs[i].name);
        rc = vg_aseg_load(p, &seg, err);
        if (!rc) rc = scan_segment(st, seg);
        if (!rc) trim(st, limit);
    }
    vg_free(refs);
    for (int t = 0; t < 3; t++) vg_audit_free_names(names[t], nn[t]);
    return rc;
}

static int open_match(const struct qstate *st, const vg_aseg_rec *r)
{
    for (int f = 0; f < VG_AFIELD__N; f++) {
        const char *v = qfield(st->q, f);
        if (v && strcmp(v, r->field[f]) != 0) return 0;
    }
    return in_range(st, r->ts_ms, r->key);
}

static vg_err_t scan_open(vg_auditstore_t *s, struct qstate *st)
{
    vg_err_t rc = VG_OK;
    pthread_mutex_lock(&s->mu);
    for (struct vg_abucket *b = s->buckets; b && !rc; b = b->next) {
        if (strcmp(b->tenant, st->q->tenant) != 0) continue;
        for (size_t i = 0; i < b->n && !rc; i++) {
            if (!open_match(st, &b->recs[i])) continue;
            if (st->nopen == st->opencap) {
                size_t nc = st->opencap ? st->opencap * 2 : 64;
                char **no = vg_realloc(st->open, nc * sizeof(*no));
                if (!no) {
                    rc = VG_ENOMEM;
                    break;
                }
                st->open = no, st->opencap = nc;
            }
            if (!(st->open[st->nopen] = vg_strdup(b->recs[i].line))) {
                rc = VG_ENOMEM;
                break;
            }
            st->nopen++;
            rc = add_cand(st, b->recs[i].ts_ms, b->recs[i].key, -(int32_t)st->nopen, 0);
        }
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static vg_err_t emit(struct qstate *st, size_t limit, vg_buf *out, char next[64], vg_error *err)
{
    vg_err_t rc = VG_OK;
    if (st->n) qsort(st->c, st->n, sizeof(*st->c), cand_cmp);
    size_t k = st->n < limit ? st->n : limit;
    for (size_t i = 0; i < k && !rc; i++) {
        const struct cand *c = &st->c[i];
        const char *line;
        size_t len;
        if (c->src < 0)
            line = st->open[-c->src - 1], len = strlen(line);
        else
            rc = vg_aseg_line(st->segs[c->src], c->ord, &line, &len, err);
        if (!rc) rc = vg_buf_append(out, line, len);
        if (!rc) rc = vg_buf_putc(out, '\n');
    }
    next[0] = 0;
    if (!rc && (st->n > limit || (st->more && k == limit)))
        snprintf(next, 64, "%" PRId64 "-%016" PRIx64, st->c[k - 1].ts, st->c[k - 1].key);
    return rc;
}

static vg_err_t parse_cursor(struct qstate *st, const char *c, vg_error *err)
{
    if (!c || !*c) return VG_OK;
    char *end = NULL;
    long long ts = strtoll(c, &end, 10);
    if (end == c || *end != '-') return vg_error_set(err, VG_EINVAL, "bad cursor");
    const char *k = end + 1;
    unsigned long long key = strtoull(k, &end, 16);
    if (end == k || *end) return vg_error_set(err, VG_EINVAL, "bad cursor");
    st->cts = ts, st->ckey = key, st->has_cursor = 1;
    return VG_OK;
}

vg_err_t vg_auditstore_query(vg_auditstore_t *s, const vg_audit_query *q, vg_buf *out,
                             char next[64], vg_error *err)
{
    next[0] = 0;
    if (!q->tenant || !*q->tenant) return vg_error_set(err, VG_EINVAL, "tenant is required");
    size_t limit = q->limit ? q->limit : 100;
    if (limit > MAX_LIMIT) limit = MAX_LIMIT;
    struct qstate st = {.q = q};
    vg_err_t rc = parse_cursor(&st, q->cursor, err);
    if (rc) return rc;
    pthread_rwlock_rdlock(&s->seg_mu);
    rc = scan_open(s, &st);
    if (!rc) rc = scan_segments(s, &st, limit, err);
    if (!rc) rc = emit(&st, limit, out, next, err);
    pthread_rwlock_unlock(&s->seg_mu);
    if (rc == VG_ETOOLARGE)
        vg_error_set(err, rc, "query matches too many records; narrow it");
    else if (rc == VG_ENOMEM)
        vg_error_set(err, rc, "out of memory");
    for (size_t i = 0; i < st.nseg; i++) vg_aseg_free(st.segs[i]);
    for (size_t i = 0; i < st.nopen; i++) vg_free(st.open[i]);
    vg_free(st.segs), vg_free(st.open), vg_free(st.c);
    return rc;
}

/* ---- stats ---- */

static void chain_counts(const vg_auditstore_t *s, const char *tenant, vg_audit_tier_stats *st)
{
    char cp[1024];
    vg_achain_ent *e = NULL;
    size_t n = 0;
    if (vg_audit_path(s->dir, tenant, "chain.log", cp, sizeof(cp)) ||
        vg_achain_read(cp, &e, &n, NULL))
        return;
    for (size_t i = 0; i < n; i++) {
        if (!strcmp(e[i].kind, "delete")) st->deleted_segments++;
        if (!strcmp(e[i].kind, "erase")) st->erasures++;
    }
    vg_free(e);
}

static void tier_counts(const vg_auditstore_t *s, const char *tenant, vg_audit_tier_stats *st)
{
    char dir[1024], p[1200];
    for (int t = 0; t < 3; t++) {
        char **names = NULL;
        size_t n = 0;
        if (vg_audit_list_segments(s->dir, tenant, t, &names, &n, NULL)) continue;
        vg_audit_path(s->dir, tenant, vg_audit_tiers[t], dir, sizeof(dir));
        for (size_t i = 0; i < n; i++) {
            uint64_t nrec = 0;
            int64_t hour;
            struct stat sb;
            snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
            if (vg_aseg_peek(p, &nrec, &hour, NULL) || stat(p, &sb) != 0) continue;
            st->segments[t]++;
            st->records[t] += nrec;
            st->bytes[t] += (uint64_t)sb.st_size;
        }
        vg_audit_free_names(names, n);
    }
}

vg_err_t vg_auditstore_stats(vg_auditstore_t *s, vg_audit_tier_stats *st, vg_error *err)
{
    memset(st, 0, sizeof(*st));
    char **ten = NULL;
    size_t nt = 0;
    pthread_rwlock_rdlock(&s->seg_mu);
    vg_err_t rc = vg_audit_list_tenants(s->dir, &ten, &nt, err);
    for (size_t i = 0; i < nt && !rc; i++) {
        tier_counts(s, ten[i], st);
        chain_counts(s, ten[i], st);
    }
    pthread_rwlock_unlock(&s->seg_mu);
    pthread_mutex_lock(&s->mu);
    for (struct vg_abucket *b = s->buckets; b; b = b->next) st->open_records += b->n;
    pthread_mutex_unlock(&s->mu);
    vg_audit_free_names(ten, nt);
    return rc;
}
