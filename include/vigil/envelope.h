/*
 * envelope.h - the batch envelope: a protobuf-c vigil.v1.Batch in one zstd frame.
 *
 * This is what agents put on Kafka and POST to /ingest/v1/batch. Decoding is
 * the first thing the collector does with bytes from the network, so every
 * size is capped before memory is committed: the compressed length, the
 * declared and the actual decompressed length (a zstd bomb is refused while
 * streaming, not after), and the protobuf size.
 */
#ifndef VIGIL_ENVELOPE_H
#define VIGIL_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/v1/envelope.pb-c.h"

typedef Vigil__V1__Batch vg_batch_t;

typedef struct vg_envelope_limits {
    size_t max_compressed;   /* default 16 MiB */
    size_t max_decompressed; /* default 64 MiB */
} vg_envelope_limits;

#define VG_ENVELOPE_SCHEMA "1"

/* Default limits. */
vg_envelope_limits vg_envelope_default_limits(void);

/* Serialise b and compress it as one zstd frame at level (1..19; 0 = 3), with
 * the content size in the frame header. VG_EINVAL if no payload is set.
 * On success *out is allocated with vg_malloc and the caller frees it. */
vg_err_t vg_envelope_encode(const vg_batch_t *b, int level, uint8_t **out, size_t *out_len,
                            vg_error *err);

/* Decompress and unpack exactly one zstd frame (no trailing bytes). lim may be
 * NULL, and a 0 field means its default. A frame without a declared content
 * size must also need a window no larger than max_decompressed (rounded up to
 * a power of two). Unpacking may use at most 16x the decompressed size in
 * memory. On success the caller frees *out with vg_envelope_batch_free.
 * Errors: VG_ETOOLARGE, VG_EPARSE (incl. no payload), VG_ENOMEM. */
vg_err_t vg_envelope_decode(const uint8_t *in, size_t len, const vg_envelope_limits *lim,
                            vg_batch_t **out, vg_error *err);

/* Free a batch returned by vg_envelope_decode (not one built by hand). NULL is a no-op. */
void vg_envelope_batch_free(vg_batch_t *b);

#endif
