/*
 * receiver.h - the Prometheus remote-write 1.0 receiver (POST /api/v1/write).
 *
 * A request goes through four gates, each refusing with the status that tells
 * the sender what to do: headers (415, checked before any byte is decoded),
 * snappy block decoding against a size cap (400/413), protobuf decoding into a
 * per-request arena with a budget (400/413), then per-series validation and
 * the store (400 for data no retry will fix, 429/5xx when a retry may work).
 * The work is done by a pure function (vg_rw_handle) so unit tests and the
 * fuzz harness exercise exactly what the HTTP route runs.
 */
#ifndef VIGIL_REMOTEWRITE_RECEIVER_H
#define VIGIL_REMOTEWRITE_RECEIVER_H

#include <stddef.h>
#include <stdint.h>

#include "prometheus/remote.pb-c.h"
#include "tsdb/tsdb.h"
#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/metrics.h"

/* Default cap on the snappy-decoded body (Prometheus sends ~0.5 MiB). */
#define VG_RW_DEFAULT_MAX_DECODED (64u << 20)

typedef struct vg_rw_receiver vg_rw_receiver_t;

typedef struct vg_rw_opts {
    size_t max_decoded; /* cap on the decoded WriteRequest; 0 = VG_RW_DEFAULT_MAX_DECODED */
} vg_rw_opts;

/* What one request came to. */
typedef struct vg_rw_result {
    int status;               /* HTTP status to answer */
    uint64_t samples_written; /* stored or already stored (deduplicated) */
    uint64_t samples_received;
    char msg[512]; /* why, when status is not 204 */
} vg_rw_result;

/* New receiver appending to db. metrics may be NULL; otherwise the
 * vigil_remote_write_* self-metrics are registered there (both must outlive
 * the receiver). opts may be NULL. NULL on ENOMEM. */
vg_rw_receiver_t *vg_rw_receiver_new(vg_tsdb_t *db, vg_metrics_t *metrics, const vg_rw_opts *opts);
/* Free; NULL is a no-op. The HTTP server must be stopped first. */
void vg_rw_receiver_free(vg_rw_receiver_t *r);
struct vg_mdstore;
/* Keep the metadata of requests (WriteRequest.metadata) in md (borrowed;
 * must outlive r). Without it metadata is ignored. */
void vg_rw_receiver_set_metadata(vg_rw_receiver_t *r, struct vg_mdstore *md);
/* Route POST /api/v1/write on h to r. */
vg_err_t vg_rw_receiver_register(vg_rw_receiver_t *r, vg_httpd_t *h);

/* Handle one request: header values may be NULL (missing); tenant NULL or ""
 * means "default". Fills *res (status, counts, message). Thread-safe. */
void vg_rw_handle(vg_rw_receiver_t *r, const char *content_type, const char *content_encoding,
                  const char *tenant, const uint8_t *body, size_t len, vg_rw_result *res);

/* 1 when the headers announce a remote-write 1.0 body (application/x-protobuf,
 * optionally ;proto=prometheus.WriteRequest, and snappy), else 0. */
int vg_rw_headers_ok(const char *content_type, const char *content_encoding);

/* Snappy-decode body (capped at max_decoded: VG_ETOOLARGE) and unpack the
 * WriteRequest with every allocation taken from arena (a budget of a few
 * times the decoded size: VG_ETOOLARGE past it). VG_EPARSE for bad snappy or
 * protobuf. *out lives as long as arena. */
vg_err_t vg_rw_decode(const uint8_t *body, size_t len, size_t max_decoded, vg_arena_t *arena,
                      Prometheus__WriteRequest **out, vg_error *err);

/* Why a series would be refused before it reaches the store. */
typedef enum vg_rw_series_check {
    VG_RW_SERIES_OK = 0,
    VG_RW_SERIES_NO_NAME,        /* no __name__, or an empty one */
    VG_RW_SERIES_DUPLICATE_NAME, /* a label name appears twice */
    VG_RW_SERIES_TOO_MANY_LABELS,
} vg_rw_series_check;

/* Check one series' labels in any order; fills err with the reason. */
vg_rw_series_check vg_rw_check_series(const Prometheus__TimeSeries *ts, vg_error *err);

#endif
