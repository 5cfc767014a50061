/*
 * postings.h - the head's inverted index: label name -> value -> series refs.
 *
 * A series ref is the dense index of a series in its head (0, 1, 2, ...),
 * handed out in creation order, so appending a new ref keeps every postings
 * list sorted without a sort. Selection with matchers is then merges of
 * sorted uint32 arrays (Prometheus PostingsForMatchers):
 *   - a matcher that does not match "" selects the union of the lists of the
 *     values it matches (an EQ matcher is one hash lookup);
 *   - a matcher that matches "" also selects series lacking the label, so it
 *     is applied by subtracting the lists of the values it rejects.
 * Keys are interned strings owned by the head's vg_strtab; the maps hash the
 * string contents so queries can look up names that were never interned.
 * Not thread-safe: the head guards it with its rwlock.
 */
#ifndef VIGIL_TSDB_POSTINGS_H
#define VIGIL_TSDB_POSTINGS_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/labels.h"

/* Sorted, duplicate-free list of series refs. Zero-initialise. */
typedef struct vg_postings {
    uint32_t *v;
    size_t n, cap;
} vg_postings;

void vg_postings_free(vg_postings *p);
/* Add ref; cheap when ref is larger than every ref already present. */
vg_err_t vg_postings_add(vg_postings *p, uint32_t ref);
/* out = a AND b / a minus b. out must be empty and distinct from a and b. */
vg_err_t vg_postings_intersect(const vg_postings *a, const vg_postings *b, vg_postings *out);
vg_err_t vg_postings_subtract(const vg_postings *a, const vg_postings *b, vg_postings *out);

/* String-keyed open-addressing hash map. Keys are not copied. */
typedef struct vg_smap_ent {
    const char *key; /* NULL = free slot */
    uint64_t hash;
    void *val;
} vg_smap_ent;

typedef struct vg_smap {
    vg_smap_ent *e;
    size_t cap, n;
} vg_smap;

/* Value stored for key, or NULL. */
void *vg_smap_get(const vg_smap *m, const char *key);
/* Insert key (which must outlive the map and not be present yet). */
vg_err_t vg_smap_put(vg_smap *m, const char *key, void *val);
/* Release the table (not the keys or values). */
void vg_smap_free(vg_smap *m);

/* The index proper. Zero-initialise; free with vg_index_free. */
typedef struct vg_index {
    vg_smap names; /* name -> vg_smap of value -> vg_postings */
} vg_index;

void vg_index_free(vg_index *ix);
/* Add series ref under every (name, value) of its labels (interned strings). */
vg_err_t vg_index_add(vg_index *ix, const vg_label_t *l, size_t n, uint32_t ref);
/* Postings of name=value, or NULL. */
const vg_postings *vg_index_get(const vg_index *ix, const char *name, const char *value);
/* value -> vg_postings map of a label name, or NULL when no series has it. */
const vg_smap *vg_index_values(const vg_index *ix, const char *name);
/* Refs (all < nseries) selected by every matcher, sorted. nm == 0 selects all.
 * out must be empty; caller frees it. */
vg_err_t vg_index_select(const vg_index *ix, uint32_t nseries, vg_matcher_t *const *m, size_t nm,
                         vg_postings *out);

#endif
