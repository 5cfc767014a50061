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
 *
 * Erasure and deletion lines end with an 11th field, "hmac-sha256:ID:MAC",
 * an HMAC (sign.h) over the same input as the line's hash: a chain anyone
 * can re-hash cannot be re-signed without the key. Chains written before
 * signing existed have 10-field lines and are read as unsigned.
 */
#ifndef VIGIL_AUDITSTORE_CHAIN_H
#define VIGIL_AUDITSTORE_CHAIN_H

#include <stddef.h>
#include <stdint.h>

#include "auditstore/sign.h"
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
    char sig[100];    /* "hmac-sha256:<key id>:<mac>", or "" when unsigned */
} vg_achain_ent;

/* vg_achain_sig_check results */
#define VG_ACHAIN_SIG_OK        0
#define VG_ACHAIN_SIG_BAD       1 /* the line was altered (or the MAC forged) */
#define VG_ACHAIN_SIG_OTHER_KEY 2 /* signed under a key with another id */

/* Append e to the chain file at path (created if absent) under an exclusive
 * flock, linking it to the last line, and fsync. Fills e's seq/prev/hash,
 * and e->sig when key is not NULL (key NULL: e->sig is written as given,
 * "" = unsigned). */
vg_err_t vg_achain_append(const char *path, vg_achain_ent *e, const vg_audit_signkey *key,
                          vg_error *err);

/* Check a signed line's MAC under key: VG_ACHAIN_SIG_*. */
int vg_achain_sig_check(const vg_achain_ent *e, const vg_audit_signkey *key);

/* Read and check the chain: every line parses, seqs are 1..n, each prev is
 * the previous hash and each hash is recomputed. A missing file is an empty
 * chain. VG_ECORRUPT names the first bad line. Caller frees *out (vg_free). */
vg_err_t vg_achain_read(const char *path, vg_achain_ent **out, size_t *n, vg_error *err);

#endif
