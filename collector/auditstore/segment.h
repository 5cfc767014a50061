/*
 * segment.h - one sealed audit segment: JSON lines in zstd frames plus a
 * small index, as one self-describing file.
 *
 * Layout (little endian): a 64-byte header, a meta block (frame table,
 * record table, dedup keys, index by user_id/action/result) covered by a
 * CRC32C, then the zstd frames. The record table gives each record's time
 * and dedup key, so queries filter and page without decompressing, and the
 * index maps a field value to record ordinals so only the frames holding
 * matches are read. The integrity digest is SHA-256 over the decompressed
 * content (not the file bytes), so recompressing for a colder tier keeps
 * the digest the hash chain recorded. Keys of erased records stay in the
 * key list, so a replayed batch cannot bring an erased record back.
 */
#ifndef VIGIL_AUDITSTORE_SEGMENT_H
#define VIGIL_AUDITSTORE_SEGMENT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/buf.h"
#include "vigil/error.h"

enum { VG_AFIELD_USER = 0, VG_AFIELD_ACTION = 1, VG_AFIELD_RESULT = 2, VG_AFIELD__N = 3 };

#define VG_ASEG_MAX_RECORDS (1u << 24)
#define VG_ASEG_MAX_FRAME   (64u << 20)

/* One record to write: the JSON line (no newline) and its indexed fields. */
typedef struct vg_aseg_rec {
    int64_t ts_ms;
    uint64_t key;
    const char *line;
    uint32_t len;
    const char *field[VG_AFIELD__N]; /* user_id, action, result; NULL = "" */
} vg_aseg_rec;

typedef struct vg_aseg vg_aseg_t;

/* Encode n records (any order; written in the given order) for hour_ms into
 * out (appended), with extra dedup keys (erased records) and zstd level.
 * digest receives SHA-256 of the content. */
vg_err_t vg_aseg_encode(const vg_aseg_rec *recs, size_t n, const uint64_t *extra_keys,
                        size_t nextra, int64_t hour_ms, int level, vg_buf *out, uint8_t digest[32],
                        vg_error *err);

/* Parse a segment held in data (copied). Checks the header, the meta CRC and
 * every bound; frames are decompressed on demand. VG_ECORRUPT on any damage. */
vg_err_t vg_aseg_parse(const uint8_t *data, size_t len, vg_aseg_t **out, vg_error *err);
/* Read and parse a segment file. */
vg_err_t vg_aseg_load(const char *path, vg_aseg_t **out, vg_error *err);
void vg_aseg_free(vg_aseg_t *s);
/* Read only a segment file's header: record count and hour (no checksum;
 * for counts and listings, never for integrity). */
vg_err_t vg_aseg_peek(const char *path, uint64_t *nrec, int64_t *hour_ms, vg_error *err);

size_t vg_aseg_count(const vg_aseg_t *s);
int64_t vg_aseg_hour(const vg_aseg_t *s);
int64_t vg_aseg_min_ts(const vg_aseg_t *s);
int64_t vg_aseg_max_ts(const vg_aseg_t *s);
int vg_aseg_level(const vg_aseg_t *s);
int64_t vg_aseg_ts(const vg_aseg_t *s, size_t ord);
uint64_t vg_aseg_key(const vg_aseg_t *s, size_t ord);
/* All dedup keys ever stored here (live and erased). */
const uint64_t *vg_aseg_keys(const vg_aseg_t *s, size_t *n);
/* Ordinals whose field equals value (ascending); *n = 0 when none. */
void vg_aseg_lookup(const vg_aseg_t *s, int field, const char *value, const uint32_t **ords,
                    size_t *n);
/* The indexed value of field for record ord ("" if none). */
const char *vg_aseg_field(const vg_aseg_t *s, size_t ord, int field);
/* Record ord's JSON line (valid until the segment is freed). */
vg_err_t vg_aseg_line(vg_aseg_t *s, size_t ord, const char **line, size_t *len, vg_error *err);
/* SHA-256 of the decompressed content (every frame is read and checked). */
vg_err_t vg_aseg_digest(vg_aseg_t *s, uint8_t out[32], vg_error *err);
/* Re-encode all records except those in drop (bitmap of count() bits, may be
 * NULL) at level; dropped keys are kept as erased keys. */
vg_err_t vg_aseg_rewrite(vg_aseg_t *s, const uint8_t *drop, int level, vg_buf *out,
                         uint8_t digest[32], vg_error *err);

/* SHA-256 helper (OpenSSL EVP) and lowercase hex of a digest (65 bytes). */
vg_err_t vg_audit_sha256(const void *p, size_t n, uint8_t out[32]);
void vg_audit_hex(const uint8_t d[32], char out[65]);

#endif
