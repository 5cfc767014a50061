/*
 * sign.h - the HMAC key that signs the audit chain's erasure and deletion
 * lines.
 *
 * The hash chain alone only catches accidental edits: anyone who can write
 * chain.log can also recompute every SHA-256 after changing a line. The two
 * events that take records away (an erasure, a deletion past retention) are
 * therefore also signed with HMAC-SHA256 under a secret key, so a forged or
 * altered one fails verification for whoever holds the key. The key is a
 * file of raw bytes (16..256); its id (first 8 bytes of a hash of it) is
 * written next to each signature, so a line signed with another key is told
 * apart from an altered one.
 */
#ifndef VIGIL_AUDITSTORE_SIGN_H
#define VIGIL_AUDITSTORE_SIGN_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

#define VG_AUDIT_KEY_MIN     16
#define VG_AUDIT_KEY_MAX     256
#define VG_AUDIT_KEY_NEW     32            /* bytes in a key the store creates */
#define VG_AUDIT_KEY_DEFAULT "signing.key" /* beside the data, under the store dir */

typedef struct vg_audit_signkey {
    uint8_t k[VG_AUDIT_KEY_MAX];
    size_t len;
    char id[17]; /* hex of the first 8 bytes of SHA-256("vigil-audit-key:" key) */
} vg_audit_signkey;

/* Read a key file. VG_ENOTFOUND when it does not exist, VG_EINVAL when it is
 * shorter than VG_AUDIT_KEY_MIN or longer than VG_AUDIT_KEY_MAX bytes.
 * *loose = 1 (may be NULL) when group or others may read it. */
vg_err_t vg_audit_signkey_load(const char *path, vg_audit_signkey *key, int *loose, vg_error *err);

/* Create path with VG_AUDIT_KEY_NEW random bytes, mode 0600 (O_EXCL: never
 * overwrites a key), fsynced, and load it into key. */
vg_err_t vg_audit_signkey_create(const char *path, vg_audit_signkey *key, vg_error *err);

/* Key from raw bytes (tests, callers holding the bytes already). */
vg_err_t vg_audit_signkey_set(vg_audit_signkey *key, const void *k, size_t len, vg_error *err);

/* HMAC-SHA256 of data under key, as 64 hex digits. */
vg_err_t vg_audit_mac(const vg_audit_signkey *key, const void *data, size_t len, char out[65]);

#endif
