/*
 * fuzz_block_index.c - parse untrusted block index and meta.json bytes.
 *
 * The first byte picks the target: 0 = meta.json, anything else = the index
 * (checksums NOT verified, so mutations reach the parsers behind them).
 * An index that opens is then used fully: selects with matchers, every
 * series entry decoded, label names and values listed. Nothing may read out
 * of bounds, loop forever or crash, whatever the offsets claim.
 */
#include <stdint.h>
#include <string.h>

#include "tsdb/block.h"
#include "tsdb/block_index.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void use_index(vg_bindex_t *ix)
{
    static vg_matcher_t *m[2];
    if (!m[0]) {
        vg_matcher_new(VG_MATCH_RE, "job", "j.*", &m[0], NULL);
        vg_matcher_new(VG_MATCH_NEQ, "__name__", "x", &m[1], NULL);
    }
    vg_arena_t *a = vg_arena_new(0);
    if (!a) return;
    for (size_t nm = 0; nm <= 2; nm++) {
        vg_postings p = {0};
        if (vg_bindex_select(ix, m, nm, &p, NULL) == VG_OK) {
            for (size_t i = 0; i < p.n && i < 1000; i++) {
                vg_label_t *l;
                vg_block_chunk *c;
                size_t nl, nc;
                vg_bindex_series(ix, p.v[i], a, &l, &nl, &c, &nc, NULL);
            }
        }
        vg_postings_free(&p);
        vg_arena_reset(a);
    }
    const char **s;
    size_t n;
    vg_bindex_strings(ix, NULL, a, &s, &n);
    vg_bindex_strings(ix, "job", a, &s, &n);
    vg_arena_free(a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    if (data[0] == 0) {
        vg_block_meta m;
        if (vg_block_meta_parse((const char *)data + 1, size - 1, &m, NULL) == VG_OK)
            vg_block_meta_clear(&m);
        return 0;
    }
    vg_bindex_t *ix = NULL;
    if (vg_bindex_open(data + 1, size - 1, 0, &ix, NULL) == VG_OK) use_index(ix);
    vg_bindex_free(ix);
    return 0;
}
