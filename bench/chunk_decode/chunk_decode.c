/*
 * chunk_decode.c - decode speed per sample of a block's chunks as written
 * (compact where the writer chose it, XOR elsewhere) against the same
 * samples all in XOR chunks.
 *
 * The compact encoding (collector/tsdb/chunk_int.c) must not make queries
 * over blocks slower per sample. This decodes every chunk of a real block
 * through the shared iterator (vg_chunk_iter_read, as the query engine
 * does), then the same samples re-encoded as XOR chunks of the same
 * lengths, several rounds each, and prints ns per sample and bytes per
 * sample of both.
 *
 *   chunk_decode BLOCK_DIR [ROUNDS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tsdb/block.h"
#include "tsdb/chunk.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"

typedef struct cset {
    const uint8_t **d;
    size_t *len, n, cap, bytes;
} cset;

static int cset_add(cset *s, const uint8_t *d, size_t len)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->d = realloc(s->d, s->cap * sizeof(*s->d));
        s->len = realloc(s->len, s->cap * sizeof(*s->len));
        if (!s->d || !s->len) return -1;
    }
    s->d[s->n] = d;
    s->len[s->n++] = len;
    s->bytes += len;
    return 0;
}

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* Decode every chunk; samples decoded, seconds in *sec. */
static size_t decode_all(const cset *s, double *sec, double *sink)
{
    int64_t ts[1024];
    double v[1024], acc = 0;
    size_t total = 0, k;
    double t0 = now();
    for (size_t i = 0; i < s->n; i++) {
        vg_chunk_iter it;
        vg_chunk_iter_init(&it, s->d[i], s->len[i]);
        while ((k = vg_chunk_iter_read(&it, ts, v, 1024)) > 0) {
            total += k;
            acc += v[k - 1] + (double)ts[0];
        }
    }
    *sec = now() - t0;
    *sink += acc;
    return total;
}

/* The same samples as XOR chunks of the same lengths. */
static int to_xor(const cset *in, cset *out)
{
    int64_t ts[1024];
    double v[1024];
    for (size_t i = 0; i < in->n; i++) {
        vg_chunk_iter it;
        vg_chunk_t *c = vg_chunk_new();
        size_t k, len;
        vg_chunk_iter_init(&it, in->d[i], in->len[i]);
        while ((k = vg_chunk_iter_read(&it, ts, v, 1024)) > 0)
            for (size_t j = 0; j < k; j++) vg_chunk_append(c, ts[j], v[j]);
        const uint8_t *b = vg_chunk_bytes(c, &len);
        uint8_t *copy = malloc(len);
        if (!copy) return -1;
        memcpy(copy, b, len);
        vg_chunk_free(c);
        if (cset_add(out, copy, len)) return -1;
    }
    return 0;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static void measure(const char *name, const cset *s, int rounds, double *sink)
{
    double sec[64];
    size_t n = 0;
    for (int r = 0; r < rounds; r++) n = decode_all(s, &sec[r], sink);
    qsort(sec, (size_t)rounds, sizeof(sec[0]), cmp_double);
    printf("%-14s %zu chunks, %zu samples, %.2f B/sample, decode %.2f ns/sample (median of "
           "%d; min %.2f)\n",
           name, s->n, n, (double)s->bytes / (double)(n ? n : 1), sec[rounds / 2] * 1e9 / (double)n,
           rounds, sec[0] * 1e9 / (double)n);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: chunk_decode BLOCK_DIR [ROUNDS]\n");
        return 2;
    }
    int rounds = argc > 2 ? atoi(argv[2]) : 7;
    if (rounds < 1 || rounds > 64) rounds = 7;
    vg_block_t *b = NULL;
    vg_error e = {0};
    if (vg_block_open(argv[1], &b, &e)) {
        fprintf(stderr, "chunk_decode: %s\n", e.msg);
        return 1;
    }
    vg_arena_t *a = vg_arena_new(0);
    vg_block_series *s = NULL;
    size_t ns = 0;
    if (!a || vg_block_select(b, NULL, 0, INT64_MIN, INT64_MAX, a, &s, &ns, &e)) {
        fprintf(stderr, "chunk_decode: %s\n", e.msg);
        return 1;
    }
    cset stored = {0}, xor = {
                           0};
    for (size_t i = 0; i < ns; i++)
        for (size_t j = 0; j < s[i].nchunks; j++)
            if (cset_add(&stored, s[i].chunks[j].data, s[i].chunks[j].len)) return 1;
    if (to_xor(&stored, &xor)) return 1;
    double sink = 0;
    for (int pass = 0; pass < 2; pass++) { /* alternate, so drift hits both */
        measure("as written", &stored, rounds, &sink);
        measure("all XOR", &xor, rounds, &sink);
    }
    fprintf(stderr, "(checksum %g)\n", sink);
    vg_arena_free(a);
    vg_block_unref(b);
    return 0;
}
