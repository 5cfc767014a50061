/*
 * chain.h - the per-tenant hash chain of audit segments (chain.log).
 *
 * One text line per event, in the spirit of CloudTrail's digest files: a
 * segment sealed, a segment deleted past retention, a segment rewritten by
 * an erasure. Each line carries the SHA-256 of the previous line's hash and
 * its own body, so removing, reordering or editing a line breaks the links,
 * and each segment event carries the segment's content digest, so a changed,
 * removed or swapped segment file no longer matches. Text, because an
 * auditor should be able to read it with `cat`.
 */
#ifndef VIGIL_AUDITSTORE_CHAIN_H
#define VIGIL_AUDITSTORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

typedef struct vg_achain_ent {
    uint64_t seq;     /* 1, 2, ... (filled by append) */
    char kind[8];     /* "seal", "delete", "erase" */
    char name[64];    /* segment file name */
    int64_t hour_ms;  /* the segment's hour */
    uint64_t records; /* seal: records; erase: records removed; delete: records dropped */
    char digest[65];  /* seal/erase: content digest after the event; delete: the last one */
    char extra[65];   /* erase: SHA-256 of tenant:subject; else "-" */
    int64_t at_ms;    /* when */
    char prev[65];    /* hash of the previous line (filled by append) */
    char hash[65];    /* hash of this line (filled by append) */
} vg_achain_ent;

/* Append e to the chain file at path (created if absent) under an exclusive
 * flock, linking it to the last line, and fsync. Fills e's seq/prev/hash. */
vg_err_t vg_achain_append(const char *path, vg_achain_ent *e, vg_error *err);

/* Read and check the chain: every line parses, seqs are 1..n, each prev is
 * the previous hash and each hash is recomputed. A missing file is an empty
 * chain. VG_ECORRUPT names the first bad line. Caller frees *out (vg_free). */
vg_err_t vg_achain_read(const char *path, vg_achain_ent **out, size_t *n, vg_error *err);

#endif
