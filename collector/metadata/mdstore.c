/*
 * mdstore.c - the metric metadata table: tenant -> name -> a few distinct
 * {type, help, unit}, bounded, persisted, answered as /api/v1/metadata.
 *
 * Shape, and why:
 *  - Metadata arrives per scrape target or remote-write request, over and
 *    over, almost always unchanged. So the common path is a hash lookup of
 *    the name and a compare of three short fields under one mutex, and only
 *    a change (a new entry, an eviction) writes anything.
 *  - A name keeps a small array of entries, each with the time it was last
 *    seen. Prometheus lists every distinct entry its active targets expose;
 *    here "active" is "seen within ttl", and a full array gives its least
 *    recently seen slot to the newcomer (a changed HELP replaces the old one
 *    instead of being refused).
 *  - The file is the Batch envelope the agents send (one per tenant, each
 *    framed with its length and CRC-32C), so loading it reuses the decoder
 *    that already guards the network path. The last-seen times are not
 *    stored: a loaded entry counts as seen at load time, so the downtime
 *    does not age it out before its sender had a chance to re-send.
 *  - The file is written by the thread that changed the table, after it
 *    released the table lock (never I/O under it); a second mutex orders
 *    writers, and a generation number skips a write someone else already
 *    did.
 */
#include "metadata/mdstore.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <xxhash.h>

#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/crc32c.h"
#include "vigil/envelope.h"
#include "vigil/log.h"
#include "prometheus/remote.pb-c.h"
#include "vigil/spool.h"

#define FILE_MAGIC  "VGMD\001\000\000\000"
#define FILE_MAX    (64u << 20)
#define PRUNE_EVERY (60 * 1000)
#define TYPE_MAX    PROMETHEUS__METRIC_METADATA__METRIC_TYPE__STATESET

typedef struct md_ent {
    int type;
    char *help, *unit;
    int64_t seen_ms;
} md_ent;

typedef struct md_name {
    char *name;
    uint64_t hash;
    size_t n;
    md_ent *e; /* max_per_metric slots */
} md_name;

typedef struct md_tenant {
    char *id;
    md_name **slots; /* open addressing, power of two */
    size_t cap, nnames, nents;
    struct md_tenant *next;
} md_tenant;

struct vg_mdstore {
    pthread_mutex_t mu;    /* the table */
    pthread_mutex_t io_mu; /* orders file writers; taken before mu, never inside it */
    md_tenant *tenants;
    char *path;
    size_t max_entries, max_per_metric;
    int64_t ttl_ms, last_prune_ms;
    uint64_t gen, saved_gen;
    size_t total;
    vg_metric_t *m_entries, *m_received, *m_drop_limit, *m_drop_invalid;
    vg_metric_t *m_evict_slot, *m_evict_ttl, *m_file_errors;
};

static const char *const type_names[] = {"unknown",        "counter", "gauge", "histogram",
                                         "gaugehistogram", "summary", "info",  "stateset"};

const char *vg_mdstore_type_name(int type)
{
    return type >= 0 && type <= TYPE_MAX ? type_names[type] : "unknown";
}

/* ---- the table ---- */

static void ent_clear(md_ent *e)
{
    vg_free(e->help);
    vg_free(e->unit);
    e->help = e->unit = NULL;
}

static void name_free(md_name *nm)
{
    if (!nm) return;
    for (size_t i = 0; i < nm->n; i++) ent_clear(&nm->e[i]);
    vg_free(nm->e);
    vg_free(nm->name);
    vg_free(nm);
}

static void tenant_free(md_tenant *t)
{
    for (size_t i = 0; i < t->cap; i++) name_free(t->slots[i]);
    vg_free(t->slots);
    vg_free(t->id);
    vg_free(t);
}

static md_tenant *tenant_get(vg_mdstore_t *md, const char *id, int create)
{
    for (md_tenant *t = md->tenants; t; t = t->next)
        if (strcmp(t->id, id) == 0) return t;
    if (!create) return NULL;
    md_tenant *t = vg_calloc(1, sizeof *t);
    if (!t || !(t->id = vg_strdup(id)) || !(t->slots = vg_calloc(16, sizeof *t->slots))) {
        if (t) vg_free(t->id);
        vg_free(t);
        return NULL;
    }
    t->cap = 16;
    t->next = md->tenants;
    md->tenants = t;
    return t;
}

static size_t slot_of(const md_tenant *t, const char *name, uint64_t h)
{
    size_t i = (size_t)h & (t->cap - 1);
    while (t->slots[i] && (t->slots[i]->hash != h || strcmp(t->slots[i]->name, name) != 0))
        i = (i + 1) & (t->cap - 1);
    return i;
}

static int grow(md_tenant *t)
{
    size_t cap = t->cap * 2;
    md_name **s = vg_calloc(cap, sizeof *s);
    if (!s) return 0;
    for (size_t i = 0; i < t->cap; i++) {
        md_name *nm = t->slots[i];
        if (!nm) continue;
        size_t j = (size_t)nm->hash & (cap - 1);
        while (s[j]) j = (j + 1) & (cap - 1);
        s[j] = nm;
    }
    vg_free(t->slots);
    t->slots = s;
    t->cap = cap;
    return 1;
}

static md_name *name_get(vg_mdstore_t *md, md_tenant *t, const char *name, int create)
{
    uint64_t h = XXH3_64bits(name, strlen(name));
    size_t i = slot_of(t, name, h);
    if (t->slots[i] || !create) return t->slots[i];
    if ((t->nnames + 1) * 2 > t->cap) {
        if (!grow(t)) return NULL;
        i = slot_of(t, name, h);
    }
    md_name *nm = vg_calloc(1, sizeof *nm);
    if (!nm || !(nm->name = vg_strdup(name)) ||
        !(nm->e = vg_calloc(md->max_per_metric, sizeof *nm->e))) {
        name_free(nm);
        return NULL;
    }
    nm->hash = h;
    t->slots[i] = nm;
    t->nnames++;
    return nm;
}

/* Remove the empty name at slot i, re-placing the run after it. */
static void name_remove(md_tenant *t, size_t i)
{
    name_free(t->slots[i]);
    t->slots[i] = NULL;
    t->nnames--;
    for (size_t j = (i + 1) & (t->cap - 1); t->slots[j]; j = (j + 1) & (t->cap - 1)) {
        md_name *nm = t->slots[j];
        t->slots[j] = NULL;
        t->slots[slot_of(t, nm->name, nm->hash)] = nm;
    }
}

static int str_eq(const char *a, const char *b)
{
    return strcmp(a ? a : "", b ? b : "") == 0;
}

/* Well-formed UTF-8 (no overlongs, surrogates or code points past
 * U+10FFFF) of at most max bytes: the answer is JSON, which must be UTF-8. */
static int utf8_ok(const char *s, size_t max)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = 0;
    while (u[n]) {
        unsigned c = u[n], k = c < 0x80                ? 0
                               : c >= 0xc2 && c < 0xe0 ? 1
                               : c >= 0xe0 && c < 0xf0 ? 2
                               : c >= 0xf0 && c < 0xf5 ? 3
                                                       : 4;
        if (k == 4) return 0;
        unsigned lo = 0x80, hi = 0xbf;
        if (c == 0xe0) lo = 0xa0;
        if (c == 0xed) hi = 0x9f;
        if (c == 0xf0) lo = 0x90;
        if (c == 0xf4) hi = 0x8f;
        n++;
        for (unsigned i = 0; i < k; i++, n++) {
            if (u[n] < (i ? 0x80 : lo) || u[n] > (i ? 0xbf : hi)) return 0;
        }
        if (n > max) return 0;
    }
    return 1;
}

static int valid(const Prometheus__MetricMetadata *m)
{
    const char *n = m->metric_family_name;
    return n && n[0] && utf8_ok(n, VG_MDSTORE_MAX_NAME) &&
           (!m->help || utf8_ok(m->help, VG_MDSTORE_MAX_HELP)) &&
           (!m->unit || utf8_ok(m->unit, VG_MDSTORE_MAX_UNIT));
}

static int norm_type(int type)
{
    return type >= 0 && type <= TYPE_MAX ? type : 0;
}

/* Index of the slot a new entry takes in nm: a free one, else the least
 * recently seen (evicted). */
static size_t free_slot(vg_mdstore_t *md, md_tenant *t, md_name *nm)
{
    if (nm->n < md->max_per_metric) return nm->n++;
    size_t old = 0;
    for (size_t i = 1; i < nm->n; i++)
        if (nm->e[i].seen_ms < nm->e[old].seen_ms) old = i;
    ent_clear(&nm->e[old]);
    t->nents--, md->total--;
    vg_metric_inc(md->m_evict_slot);
    return old;
}

/* One entry under md->mu: 1 new, 0 known (seen time refreshed), -1 dropped. */
static int add_one(vg_mdstore_t *md, md_tenant *t, const Prometheus__MetricMetadata *m, int64_t now)
{
    int type = norm_type((int)m->type);
    md_name *nm = name_get(md, t, m->metric_family_name, 0);
    for (size_t i = 0; nm && i < nm->n; i++) {
        md_ent *e = &nm->e[i];
        if (e->type == type && str_eq(e->help, m->help) && str_eq(e->unit, m->unit)) {
            if (now > e->seen_ms) e->seen_ms = now;
            return 0;
        }
    }
    int grows = !nm || nm->n < md->max_per_metric; /* else it evicts */
    if (grows && t->nents >= md->max_entries) {
        vg_metric_inc(md->m_drop_limit);
        return -1;
    }
    if (!nm && !(nm = name_get(md, t, m->metric_family_name, 1))) return -1;
    char *help = vg_strdup(m->help ? m->help : ""), *unit = vg_strdup(m->unit ? m->unit : "");
    if (!help || !unit) {
        vg_free(help);
        vg_free(unit);
        return -1;
    }
    size_t i = free_slot(md, t, nm);
    nm->e[i] = (md_ent){type, help, unit, now};
    t->nents++, md->total++;
    return 1;
}

/* Forget what was not seen within ttl, everywhere; returns how many. */
static size_t prune_locked(vg_mdstore_t *md, int64_t now)
{
    size_t gone = 0;
    for (md_tenant *t = md->tenants; t; t = t->next) {
        for (size_t i = 0; i < t->cap; i++) {
            md_name *nm = t->slots[i];
            if (!nm) continue;
            size_t w = 0;
            for (size_t k = 0; k < nm->n; k++) {
                if (now - nm->e[k].seen_ms > md->ttl_ms)
                    ent_clear(&nm->e[k]), gone++, t->nents--, md->total--;
                else
                    nm->e[w++] = nm->e[k];
            }
            nm->n = w;
            if (!w) {
                name_remove(t, i);
                i--; /* the slot may hold a moved name now */
            }
        }
    }
    vg_metric_add(md->m_evict_ttl, (double)gone);
    return gone;
}

/* ---- the file ---- */

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One tenant as a framed Batch envelope appended to out. */
static vg_err_t encode_tenant(const md_tenant *t, vg_buf *out, vg_error *err)
{
    Prometheus__MetricMetadata *mm = vg_calloc(t->nents ? t->nents : 1, sizeof *mm);
    Prometheus__MetricMetadata **pm = vg_calloc(t->nents ? t->nents : 1, sizeof *pm);
    vg_err_t rc = mm && pm ? VG_OK : vg_error_set(err, VG_ENOMEM, "metadata: out of memory");
    size_t k = 0;
    for (size_t i = 0; !rc && i < t->cap; i++) {
        const md_name *nm = t->slots[i];
        for (size_t j = 0; nm && j < nm->n && k < t->nents; j++, k++) {
            prometheus__metric_metadata__init(&mm[k]);
            mm[k].type = (Prometheus__MetricMetadata__MetricType)nm->e[j].type;
            mm[k].metric_family_name = nm->name;
            mm[k].help = nm->e[j].help;
            mm[k].unit = nm->e[j].unit;
            pm[k] = &mm[k];
        }
    }
    Vigil__V1__MetricBatch mb = VIGIL__V1__METRIC_BATCH__INIT;
    Vigil__V1__Batch b = VIGIL__V1__BATCH__INIT;
    mb.n_metadata = k, mb.metadata = pm;
    b.tenant = t->id;
    b.payload_case = VIGIL__V1__BATCH__PAYLOAD_METRICS, b.metrics = &mb;
    uint8_t *z = NULL, hdr[8];
    size_t zn = 0;
    if (!rc) rc = vg_envelope_encode(&b, 1, &z, &zn, err);
    if (!rc) {
        put_u32(hdr, (uint32_t)zn);
        put_u32(hdr + 4, vg_crc32c(0, z, zn));
        rc = vg_buf_append(out, hdr, sizeof hdr);
        if (!rc) rc = vg_buf_append(out, z, zn);
    }
    vg_free(z);
    vg_free(mm);
    vg_free(pm);
    return rc;
}

static vg_err_t encode_all(vg_mdstore_t *md, vg_buf *out, vg_error *err)
{
    vg_err_t rc = vg_buf_append(out, FILE_MAGIC, 8);
    for (md_tenant *t = md->tenants; t && !rc; t = t->next)
        if (t->nents) rc = encode_tenant(t, out, err);
    return rc;
}

/* Write the table when it changed since the last write. */
static void save(vg_mdstore_t *md)
{
    if (!md->path) return;
    vg_buf b;
    vg_buf_init(&b, FILE_MAX);
    vg_error err = {0};
    pthread_mutex_lock(&md->io_mu);
    pthread_mutex_lock(&md->mu);
    uint64_t g = md->gen;
    vg_err_t rc = g == md->saved_gen ? VG_OK : encode_all(md, &b, &err);
    pthread_mutex_unlock(&md->mu);
    if (!rc && g != md->saved_gen) rc = vg_spool_write_file(md->path, b.data, b.len, 1, &err);
    if (!rc) md->saved_gen = g;
    pthread_mutex_unlock(&md->io_mu);
    if (rc) {
        vg_metric_inc(md->m_file_errors);
        vg_log_warn("metadata",
                    "cannot write the metadata file; it is written again on the next "
                    "change",
                    "path=%s err=\"%s\"", md->path, vg_error_msg(&err, rc));
    }
    vg_buf_free(&b);
}

/* Load one decoded Batch's entries under md->mu. */
static void load_batch(vg_mdstore_t *md, const vg_batch_t *b, int64_t now)
{
    if (b->payload_case != VIGIL__V1__BATCH__PAYLOAD_METRICS || !b->tenant || !b->tenant[0]) return;
    md_tenant *t = tenant_get(md, b->tenant, 1);
    for (size_t i = 0; t && i < b->metrics->n_metadata; i++)
        if (valid(b->metrics->metadata[i])) add_one(md, t, b->metrics->metadata[i], now);
}

/* Parse the file's bytes into the table: VG_ECORRUPT at the first bad frame
 * (what came before it is kept). */
static vg_err_t load_bytes(vg_mdstore_t *md, const uint8_t *p, size_t n, int64_t now, vg_error *err)
{
    if (n < 8 || memcmp(p, FILE_MAGIC, 8) != 0)
        return vg_error_set(err, VG_ECORRUPT, "not a metadata file (bad magic)");
    for (size_t off = 8; off < n;) {
        if (n - off < 8) return vg_error_set(err, VG_ECORRUPT, "truncated frame at %zu", off);
        size_t len = get_u32(p + off);
        uint32_t crc = get_u32(p + off + 4);
        if (len > n - off - 8 || vg_crc32c(0, p + off + 8, len) != crc)
            return vg_error_set(err, VG_ECORRUPT, "bad frame at %zu", off);
        vg_batch_t *b = NULL;
        vg_err_t rc = vg_envelope_decode(p + off + 8, len, NULL, &b, err);
        if (rc) return rc;
        load_batch(md, b, now);
        vg_envelope_batch_free(b);
        off += 8 + len;
    }
    return VG_OK;
}

static void load_file(vg_mdstore_t *md, int64_t now)
{
    struct stat st;
    vg_error err = {0};
    if (stat(md->path, &st) != 0) return; /* none yet */
    size_t cap = st.st_size > 0 && (uint64_t)st.st_size < FILE_MAX ? (size_t)st.st_size : FILE_MAX;
    uint8_t *buf = vg_malloc(cap + 1);
    size_t n = 0;
    vg_err_t rc = buf ? vg_spool_read_file(md->path, buf, cap + 1, &n, &err)
                      : vg_error_set(&err, VG_ENOMEM, "out of memory");
    if (!rc) rc = vg_mdstore_load(md, buf, n, now, &err);
    md->saved_gen = md->gen = rc ? 1 : 0; /* a bad file is rewritten on the first change */
    vg_free(buf);
    if (rc) {
        vg_metric_inc(md->m_file_errors);
        vg_log_warn("metadata",
                    "metadata file unreadable; keeping what loaded, the rest is "
                    "relearned from agents and remote-write senders",
                    "path=%s err=\"%s\"", md->path, vg_error_msg(&err, rc));
    }
}

/* ---- public ---- */

vg_err_t vg_mdstore_load(vg_mdstore_t *md, const uint8_t *p, size_t n, int64_t now_ms,
                         vg_error *err)
{
    pthread_mutex_lock(&md->mu);
    vg_err_t rc = load_bytes(md, p, n, now_ms, err);
    vg_metric_set(md->m_entries, (double)md->total);
    pthread_mutex_unlock(&md->mu);
    return rc;
}

static void register_metrics(vg_mdstore_t *md, vg_metrics_t *m)
{
    const char *dn = "vigil_metadata_dropped_total",
               *dh = "Metric metadata entries not kept, by reason.";
    const char *en = "vigil_metadata_evicted_total",
               *eh = "Metric metadata entries forgotten to make room or not seen within the ttl.";
    md->m_entries = vg_metrics_gauge(m, "vigil_metadata_entries",
                                     "Metric metadata entries held, all tenants.", NULL);
    md->m_received = vg_metrics_counter(m, "vigil_metadata_received_total",
                                        "Metric metadata entries received.", NULL);
    md->m_drop_limit = vg_metrics_counter(m, dn, dh, "reason=\"max_entries\"");
    md->m_drop_invalid = vg_metrics_counter(m, dn, dh, "reason=\"invalid\"");
    md->m_evict_slot = vg_metrics_counter(m, en, eh, "reason=\"max_per_metric\"");
    md->m_evict_ttl = vg_metrics_counter(m, en, eh, "reason=\"ttl\"");
    md->m_file_errors = vg_metrics_counter(m, "vigil_metadata_file_errors_total",
                                           "Failed reads or writes of the metadata file.", NULL);
}

vg_err_t vg_mdstore_open(const vg_mdstore_opts *opts, vg_metrics_t *metrics, vg_mdstore_t **out,
                         vg_error *err)
{
    vg_mdstore_opts o = opts ? *opts : (vg_mdstore_opts){0};
    *out = NULL;
    vg_mdstore_t *md = vg_calloc(1, sizeof *md);
    if (!md) return vg_error_set(err, VG_ENOMEM, "metadata: out of memory");
    pthread_mutex_init(&md->mu, NULL);
    pthread_mutex_init(&md->io_mu, NULL);
    md->max_entries = o.max_entries ? o.max_entries : VG_MDSTORE_DEFAULT_MAX_ENTRIES;
    md->max_per_metric = o.max_per_metric ? o.max_per_metric : VG_MDSTORE_DEFAULT_MAX_PER_METRIC;
    md->ttl_ms = o.ttl_ms > 0 ? o.ttl_ms : VG_MDSTORE_DEFAULT_TTL_MS;
    register_metrics(md, metrics);
    if (o.path && !(md->path = vg_strdup(o.path))) {
        vg_mdstore_free(md);
        return vg_error_set(err, VG_ENOMEM, "metadata: out of memory");
    }
    int64_t now = 0;
    if (md->path) {
        now = vg_clock_wall_ms();
        load_file(md, now);
    }
    md->last_prune_ms = now;
    vg_metric_set(md->m_entries, (double)md->total);
    *out = md;
    return VG_OK;
}

void vg_mdstore_free(vg_mdstore_t *md)
{
    if (!md) return;
    while (md->tenants) {
        md_tenant *t = md->tenants;
        md->tenants = t->next;
        tenant_free(t);
    }
    pthread_mutex_destroy(&md->mu);
    pthread_mutex_destroy(&md->io_mu);
    vg_free(md->path);
    vg_free(md);
}

size_t vg_mdstore_add(vg_mdstore_t *md, const char *tenant,
                      const Prometheus__MetricMetadata *const *m, size_t n, int64_t now_ms)
{
    size_t added = 0, changed = 0;
    if (!md || !n) return 0;
    vg_metric_add(md->m_received, (double)n);
    pthread_mutex_lock(&md->mu);
    if (now_ms - md->last_prune_ms >= PRUNE_EVERY) { /* first: what it frees counts below */
        changed = prune_locked(md, now_ms);
        md->last_prune_ms = now_ms;
    }
    md_tenant *t = tenant_get(md, tenant && tenant[0] ? tenant : "default", 1);
    for (size_t i = 0; t && i < n; i++) {
        if (!m[i] || !valid(m[i])) {
            vg_metric_inc(md->m_drop_invalid);
            continue;
        }
        if (add_one(md, t, m[i], now_ms) == 1) added++;
    }
    changed += added;
    if (changed) md->gen++;
    vg_metric_set(md->m_entries, (double)md->total);
    pthread_mutex_unlock(&md->mu);
    if (changed) save(md);
    return added;
}

size_t vg_mdstore_count(vg_mdstore_t *md, const char *tenant)
{
    pthread_mutex_lock(&md->mu);
    md_tenant *t = tenant_get(md, tenant, 0);
    size_t n = t ? t->nents : 0;
    pthread_mutex_unlock(&md->mu);
    return n;
}

/* ---- remote_write ---- */

void vg_mdstore_wr_free(vg_mdstore_wr *w, size_t n)
{
    for (size_t i = 0; w && i < n; i++) {
        vg_free(w[i].tenant);
        vg_free(w[i].data);
    }
    vg_free(w);
}

/* Pack mm[0..k) as one WriteRequest of tenant into w. */
static vg_err_t pack_wr(const char *tenant, Prometheus__MetricMetadata **pm, size_t k,
                        vg_mdstore_wr *w)
{
    Prometheus__WriteRequest wr = PROMETHEUS__WRITE_REQUEST__INIT;
    wr.n_metadata = k, wr.metadata = pm;
    w->len = prometheus__write_request__get_packed_size(&wr);
    w->entries = k;
    w->tenant = vg_strdup(tenant);
    w->data = vg_malloc(w->len ? w->len : 1);
    if (!w->tenant || !w->data) return VG_ENOMEM;
    prometheus__write_request__pack(&wr, w->data);
    return VG_OK;
}

/* Pack pm[0..k) as the next request of *out. */
static vg_err_t push_wr(const char *tenant, Prometheus__MetricMetadata **pm, size_t k,
                        vg_mdstore_wr **out, size_t *n, size_t *cap)
{
    if (*n == *cap) {
        size_t c = *cap ? 2 * *cap : 8;
        vg_mdstore_wr *g = vg_realloc(*out, c * sizeof *g);
        if (!g) return VG_ENOMEM;
        *out = g, *cap = c;
    }
    (*out)[*n] = (vg_mdstore_wr){0};
    return pack_wr(tenant, pm, k, &(*out)[(*n)++]);
}

/* The live entries of t, per at a time, appended to *out. */
static vg_err_t tenant_wrs(const md_tenant *t, int64_t now, int64_t ttl, size_t per,
                           vg_mdstore_wr **out, size_t *n, size_t *cap)
{
    Prometheus__MetricMetadata *mm = vg_calloc(per, sizeof *mm);
    Prometheus__MetricMetadata **pm = vg_calloc(per, sizeof *pm);
    vg_err_t rc = mm && pm ? VG_OK : VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < t->cap && !rc; i++) {
        const md_name *nm = t->slots[i];
        for (size_t j = 0; nm && j < nm->n && !rc; j++) {
            if (now - nm->e[j].seen_ms > ttl) continue;
            prometheus__metric_metadata__init(&mm[k]);
            mm[k].type = (Prometheus__MetricMetadata__MetricType)nm->e[j].type;
            mm[k].metric_family_name = nm->name;
            mm[k].help = nm->e[j].help;
            mm[k].unit = nm->e[j].unit;
            pm[k] = &mm[k];
            if (++k == per) rc = push_wr(t->id, pm, k, out, n, cap), k = 0;
        }
    }
    if (!rc && k) rc = push_wr(t->id, pm, k, out, n, cap);
    vg_free(mm);
    vg_free(pm);
    return rc;
}

vg_err_t vg_mdstore_write_requests(vg_mdstore_t *md, int64_t now_ms, size_t per,
                                   vg_mdstore_wr **out, size_t *n)
{
    size_t cap = 0;
    vg_err_t rc = VG_OK;
    *out = NULL, *n = 0;
    if (!per) per = 500;
    pthread_mutex_lock(&md->mu);
    for (md_tenant *t = md->tenants; t && !rc; t = t->next)
        if (t->nents) rc = tenant_wrs(t, now_ms, md->ttl_ms, per, out, n, &cap);
    pthread_mutex_unlock(&md->mu);
    if (rc) vg_mdstore_wr_free(*out, *n), *out = NULL, *n = 0;
    return rc;
}

/* ---- /api/v1/metadata ---- */

static int cmp_name(const void *a, const void *b)
{
    return strcmp((*(const md_name *const *)a)->name, (*(const md_name *const *)b)->name);
}

static vg_err_t json_name(const md_name *nm, long long per, int64_t now, int64_t ttl, vg_buf *out)
{
    vg_err_t rc = vg_buf_json_str(out, nm->name, strlen(nm->name));
    if (!rc) rc = vg_buf_puts(out, ":[");
    long long k = 0;
    for (size_t i = 0; i < nm->n && !rc && (per <= 0 || k < per); i++) {
        const md_ent *e = &nm->e[i];
        if (now - e->seen_ms > ttl) continue;
        if (k++) rc = vg_buf_putc(out, ',');
        if (!rc) rc = vg_buf_printf(out, "{\"type\":\"%s\",\"help\":", type_names[e->type]);
        if (!rc) rc = vg_buf_json_str(out, e->help, strlen(e->help));
        if (!rc) rc = vg_buf_puts(out, ",\"unit\":");
        if (!rc) rc = vg_buf_json_str(out, e->unit, strlen(e->unit));
        if (!rc) rc = vg_buf_putc(out, '}');
    }
    return rc ? rc : vg_buf_putc(out, ']');
}

static int live(const md_name *nm, int64_t now, int64_t ttl)
{
    for (size_t i = 0; i < nm->n; i++)
        if (now - nm->e[i].seen_ms <= ttl) return 1;
    return 0;
}

/* The names of t to list, sorted, into *v (caller frees). */
static vg_err_t pick_names(const md_tenant *t, const char *metric, int64_t now, int64_t ttl,
                           md_name ***v, size_t *n)
{
    *n = 0;
    *v = vg_malloc((t->nnames ? t->nnames : 1) * sizeof **v);
    if (!*v) return VG_ENOMEM;
    for (size_t i = 0; i < t->cap; i++) {
        md_name *nm = t->slots[i];
        if (nm && (!metric || strcmp(nm->name, metric) == 0) && live(nm, now, ttl))
            (*v)[(*n)++] = nm;
    }
    qsort(*v, *n, sizeof **v, cmp_name);
    return VG_OK;
}

vg_err_t vg_mdstore_json(vg_mdstore_t *md, const char *tenant, const char *metric, long long limit,
                         long long limit_per_metric, int64_t now_ms, vg_buf *out)
{
    md_name **v = NULL;
    size_t n = 0;
    vg_err_t rc = vg_buf_putc(out, '{');
    pthread_mutex_lock(&md->mu);
    md_tenant *t = tenant_get(md, tenant && tenant[0] ? tenant : "default", 0);
    if (!rc && t)
        rc = pick_names(t, metric && metric[0] ? metric : NULL, now_ms, md->ttl_ms, &v, &n);
    if (limit >= 0 && (unsigned long long)limit < n) n = (size_t)limit;
    for (size_t i = 0; i < n && !rc; i++) {
        if (i) rc = vg_buf_putc(out, ',');
        if (!rc) rc = json_name(v[i], limit_per_metric, now_ms, md->ttl_ms, out);
    }
    pthread_mutex_unlock(&md->mu);
    vg_free(v);
    return rc ? rc : vg_buf_putc(out, '}');
}
