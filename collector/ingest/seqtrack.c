/*
 * seqtrack.c - which batch seqs each agent delivered: contiguous prefix + bitmap.
 *
 * Per agent: `base` (every seq 1..base was stored) and a bitmap of the
 * `window` seqs above it. Storing seq base+1 advances base over the run of
 * set bits that follows, so an agent that delivers in order costs one shift
 * per batch and an all-zero bitmap. Out-of-order and replayed batches land
 * in the bitmap; a seq more than `window` ahead slides the window forward
 * and the unseen seqs it passes become permanent gaps (`abandoned`), which
 * is what they almost certainly are, and keeps memory fixed per agent.
 *
 * missing = abandoned + (highest - base) - (set bits): exact within the
 * window. A seq below base is a duplicate (a late copy of an abandoned seq
 * also counts as one; it cannot be told apart without unbounded memory).
 * Agents live in an open-addressing table keyed by the id's hash; one mutex
 * covers it, as observe() is a few shifts per batch.
 */
#include "ingest/seqtrack.h"

#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

#define ID_MAX 128

struct agent {
    char id[ID_MAX + 1];
    uint64_t hash, base, highest, abandoned, dups, batches;
    uint32_t inwin; /* set bits */
    uint64_t *bits; /* bit i <-> seq base + 1 + i */
    vg_metric_t *m_high, *m_gaps, *m_dups;
};

struct vg_seqtrack {
    pthread_mutex_t mu;
    struct agent **tab; /* open addressing, cap a power of two, at most half full */
    size_t cap, n, max_agents;
    uint32_t window, words;
    vg_metrics_t *m;
    vg_metric_t *dup_total, *tracked, *untracked;
};

/* ---- the bitmap ---- */

static uint32_t count_first(const struct agent *a, uint32_t nbits)
{
    uint32_t c = 0;
    for (uint32_t w = 0; nbits; w++) {
        uint64_t v = a->bits[w];
        uint32_t take = nbits < 64 ? nbits : 64;
        if (take < 64) v &= (UINT64_C(1) << take) - 1;
        c += (uint32_t)__builtin_popcountll(v);
        nbits -= take;
    }
    return c;
}

/* Drop the lowest k bits, moving the rest down (all of them when k >= the width). */
static void shift_down(struct agent *a, uint32_t words, uint64_t k)
{
    if (k >= (uint64_t)words * 64) {
        memset(a->bits, 0, words * sizeof(*a->bits));
        return;
    }
    uint32_t ws = (uint32_t)(k / 64), bs = (uint32_t)(k % 64);
    for (uint32_t i = 0; i < words; i++) {
        uint64_t lo = i + ws < words ? a->bits[i + ws] : 0;
        uint64_t hi = i + ws + 1 < words ? a->bits[i + ws + 1] : 0;
        a->bits[i] = bs ? (lo >> bs) | (hi << (64 - bs)) : lo;
    }
}

/* Move base over the run of stored seqs just above it. */
static void advance(struct agent *a, uint32_t words)
{
    uint64_t run = 0;
    for (uint32_t w = 0; w < words; w++) {
        if (a->bits[w] == UINT64_MAX) {
            run += 64;
            continue;
        }
        run += (uint64_t)__builtin_ctzll(~a->bits[w]);
        break;
    }
    if (!run) return;
    shift_down(a, words, run);
    a->base += run;
    a->inwin -= (uint32_t)run;
}

/* Make room for seq: base moves to seq - window; unseen seqs passed are gaps. */
static void slide(struct agent *a, uint32_t window, uint32_t words, uint64_t seq)
{
    uint64_t k = seq - window - a->base;
    uint32_t in = k < window ? (uint32_t)k : window;
    uint32_t seen = count_first(a, in);
    a->abandoned += k - seen;
    a->inwin -= seen;
    shift_down(a, words, k);
    a->base += k;
}

/* ---- agents ---- */

static void escape_label(const char *s, char *out, size_t n)
{
    size_t o = 0;
    for (; *s && o + 3 < n; s++) {
        if (*s == '"' || *s == '\\') out[o++] = '\\';
        if (*s == '\n') {
            out[o++] = '\\';
            out[o++] = 'n';
            continue;
        }
        out[o++] = *s;
    }
    out[o] = '\0';
}

static void agent_metrics(vg_seqtrack_t *t, struct agent *a)
{
    char esc[2 * ID_MAX + 8], lab[2 * ID_MAX + 32];
    if (!t->m) return;
    escape_label(a->id, esc, sizeof(esc));
    snprintf(lab, sizeof(lab), "agent_id=\"%s\"", esc);
    a->m_high = vg_metrics_gauge(t->m, "vigil_ingest_agent_seq_highest",
                                 "Highest batch seq stored from the agent.", lab);
    a->m_gaps = vg_metrics_gauge(t->m, "vigil_ingest_agent_seq_gaps",
                                 "Batch seqs below the highest that were never stored.", lab);
    a->m_dups = vg_metrics_counter(t->m, "vigil_ingest_agent_batches_duplicate_total",
                                   "Batches from the agent whose seq was already stored.", lab);
}

static struct agent *agent_new(vg_seqtrack_t *t, const char *id, uint64_t h)
{
    struct agent *a = vg_calloc(1, sizeof(*a));
    if (!a || !(a->bits = vg_calloc(t->words, sizeof(*a->bits)))) {
        vg_free(a);
        return NULL;
    }
    snprintf(a->id, sizeof(a->id), "%s", id);
    a->hash = h;
    agent_metrics(t, a);
    return a;
}

static void tab_put(struct agent **tab, size_t cap, struct agent *a)
{
    size_t i = (size_t)a->hash & (cap - 1);
    while (tab[i]) i = (i + 1) & (cap - 1);
    tab[i] = a;
}

static int tab_grow(vg_seqtrack_t *t)
{
    if ((t->n + 1) * 2 <= t->cap) return 0;
    size_t cap = t->cap ? t->cap * 2 : 64;
    struct agent **tab = vg_calloc(cap, sizeof(*tab));
    if (!tab) return -1;
    for (size_t i = 0; i < t->cap; i++)
        if (t->tab[i]) tab_put(tab, cap, t->tab[i]);
    vg_free(t->tab);
    t->tab = tab;
    t->cap = cap;
    return 0;
}

/* Ids are compared on their first ID_MAX bytes, as stored. */
static struct agent *find(vg_seqtrack_t *t, const char *id, uint64_t h)
{
    for (size_t i = (size_t)h & (t->cap - 1); t->cap && t->tab[i]; i = (i + 1) & (t->cap - 1))
        if (t->tab[i]->hash == h && !strncmp(t->tab[i]->id, id, ID_MAX)) return t->tab[i];
    return NULL;
}

static struct agent *find_or_add(vg_seqtrack_t *t, const char *id)
{
    size_t len = strnlen(id, ID_MAX);
    uint64_t h = XXH3_64bits(id, len);
    struct agent *a = find(t, id, h);
    if (a || t->n >= t->max_agents || tab_grow(t)) return a;
    if (!(a = agent_new(t, id, h))) return NULL;
    tab_put(t->tab, t->cap, a);
    t->n++;
    vg_metric_set(t->tracked, (double)t->n);
    return a;
}

/* ---- public ---- */

vg_seqtrack_t *vg_seqtrack_new(const vg_seqtrack_opts *o, vg_metrics_t *m)
{
    vg_seqtrack_t *t = vg_calloc(1, sizeof(*t));
    if (!t) return NULL;
    pthread_mutex_init(&t->mu, NULL);
    t->max_agents = o && o->max_agents ? o->max_agents : 10000;
    t->window = o && o->window ? (o->window + 63) / 64 * 64 : 4096;
    t->words = t->window / 64;
    t->m = m;
    t->dup_total = vg_metrics_counter(m, "vigil_ingest_batches_duplicate_total",
                                      "Batches whose agent seq was already stored (applied "
                                      "again idempotently).",
                                      NULL);
    t->tracked = vg_metrics_gauge(m, "vigil_ingest_agents_tracked",
                                  "Agents whose batch seqs are tracked.", NULL);
    t->untracked = vg_metrics_counter(m, "vigil_ingest_batches_untracked_total",
                                      "Batches without an agent id or seq, or from agents over "
                                      "the tracking cap.",
                                      NULL);
    return t;
}

void vg_seqtrack_free(vg_seqtrack_t *t)
{
    if (!t) return;
    for (size_t i = 0; i < t->cap; i++) {
        if (!t->tab[i]) continue;
        vg_free(t->tab[i]->bits);
        vg_free(t->tab[i]);
    }
    vg_free(t->tab);
    pthread_mutex_destroy(&t->mu);
    vg_free(t);
}

static vg_seq_result record(vg_seqtrack_t *t, struct agent *a, uint64_t seq)
{
    a->batches++;
    if (seq > a->base && seq - a->base > t->window) slide(a, t->window, t->words, seq);
    if (seq <= a->base) return VG_SEQ_DUPLICATE;
    uint64_t off = seq - a->base - 1;
    uint64_t *w = &a->bits[off / 64], bit = UINT64_C(1) << (off % 64);
    if (*w & bit) return VG_SEQ_DUPLICATE;
    *w |= bit;
    a->inwin++;
    if (seq > a->highest) a->highest = seq;
    advance(a, t->words);
    return VG_SEQ_NEW;
}

static uint64_t missing(const struct agent *a)
{
    return a->abandoned + (a->highest - a->base) - a->inwin;
}

vg_seq_result vg_seqtrack_observe(vg_seqtrack_t *t, const char *agent_id, uint64_t seq)
{
    if (!t || !agent_id || !*agent_id || seq == 0) {
        if (t) vg_metric_inc(t->untracked);
        return VG_SEQ_UNTRACKED;
    }
    pthread_mutex_lock(&t->mu);
    struct agent *a = find_or_add(t, agent_id);
    vg_seq_result r = VG_SEQ_UNTRACKED;
    if (a) {
        r = record(t, a, seq);
        if (r == VG_SEQ_DUPLICATE) {
            a->dups++;
            vg_metric_inc(a->m_dups);
            vg_metric_inc(t->dup_total);
        }
        vg_metric_set(a->m_high, (double)a->highest);
        vg_metric_set(a->m_gaps, (double)missing(a));
    } else {
        vg_metric_inc(t->untracked);
    }
    pthread_mutex_unlock(&t->mu);
    return r;
}

int vg_seqtrack_get(vg_seqtrack_t *t, const char *agent_id, vg_seqtrack_agent *out)
{
    memset(out, 0, sizeof(*out));
    if (!t || !agent_id) return 0;
    pthread_mutex_lock(&t->mu);
    struct agent *a = find(t, agent_id, XXH3_64bits(agent_id, strnlen(agent_id, ID_MAX)));
    if (a) {
        out->highest = a->highest;
        out->contiguous = a->base;
        out->missing = missing(a);
        out->duplicates = a->dups;
        out->batches = a->batches;
    }
    pthread_mutex_unlock(&t->mu);
    return a != NULL;
}
