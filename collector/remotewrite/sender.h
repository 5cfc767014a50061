/*
 * sender.h - the Prometheus remote-write 1.0 sender (config remote_write:).
 *
 * Follows Prometheus's design: the sender does not sit on the append path,
 * it tails the store's WAL (walwatch.h) and keeps a durable cursor per
 * remote (segment, record offset, sample index), advanced only after the
 * remote answered 2xx (or refused for good with a 4xx). Each queue holds the
 * WAL from its cursor's segment (vg_wal_hold_*), so the block writer's
 * truncation keeps what a remote that is down still needs, up to
 * storage.wal_max_hold_bytes; samples of held segments deleted over that cap
 * are counted in _dropped_samples_total{reason="wal_truncated"}.
 * Every tenant's samples go out, with X-Scope-OrgID: <tenant> unless the
 * tenant is "default".
 */
#ifndef VIGIL_REMOTEWRITE_SENDER_H
#define VIGIL_REMOTEWRITE_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include "prometheus/remote.pb-c.h"
#include "vigil/arena.h"
#include "vigil/buf.h"
#include "vigil/config.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"
#include "vigil/relabel.h"

/* One remote_write entry, in Prometheus's format. Strings live in the config arena. */
typedef struct vg_rws_config {
    const char *url;           /* required */
    const char *name;          /* NULL = "remote-<index>" */
    int64_t remote_timeout_ms; /* 30s */
    vg_kv_t *headers;
    size_t nheaders;
    struct {
        const char *username, *password, *password_file;
    } basic_auth;
    struct {
        const char *type; /* Bearer */
        const char *credentials, *credentials_file;
    } authorization;
    struct {
        const char *ca_file, *cert_file, *key_file;
        const char *server_name; /* checked in the certificate and sent as SNI */
        int insecure_skip_verify;
    } tls;
    vg_relabel_rule_t *write_relabel_rules;
    size_t nwrite_relabel_rules;
    struct {
        uint64_t capacity, max_shards, min_shards, max_samples_per_send;
        int64_t batch_send_deadline_ms, min_backoff_ms, max_backoff_ms;
        int retry_on_http_429;
    } queue;
    struct {
        int send;                      /* true */
        int64_t send_interval_ms;      /* 1m */
        uint64_t max_samples_per_send; /* 500 entries per request */
    } metadata;                        /* metadata_config: what /api/v1/metadata holds */
} vg_rws_config;

/* Schema of one remote_write entry (the collector config's LIST element). */
extern const vg_cfg_field_t vg_rws_config_schema[];
/* LIST check: compiles write_relabel_configs to report errors at load. */
vg_err_t vg_rws_config_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj);

typedef struct vg_rw_sender vg_rw_sender_t;

struct vg_wal;

/* Start one queue per entry of cfgs[0..n), each tailing wal_dir with its
 * cursor in state_dir/<name>.cursor (both directories must exist or be
 * creatable) and a hold named after the remote on wal (the WAL of wal_dir;
 * NULL = no hold, segments may go before they are sent). cfgs and wal must
 * outlive the sender. metrics may be NULL. */
vg_err_t vg_rw_sender_new(const vg_rws_config *cfgs, size_t n, const char *wal_dir,
                          struct vg_wal *wal, const char *state_dir, vg_metrics_t *metrics,
                          vg_rw_sender_t **out, vg_error *err);
struct vg_mdstore;
/* Send the metric metadata of md (borrowed; must outlive s) every
 * metadata_config.send_interval, as Prometheus does: one WriteRequest with
 * only metadata per tenant and max_samples_per_send entries, not retried
 * (the next interval sends it all again). May be called after start. */
void vg_rw_sender_set_metadata(vg_rw_sender_t *s, struct vg_mdstore *md);
/* Stop the queues (a request in flight is abandoned, its samples are resent
 * at the next start) and free. NULL is a no-op. */
void vg_rw_sender_free(vg_rw_sender_t *s);

/* One sample of a series, as the encoder takes it. */
typedef struct vg_rws_sample {
    const vg_label_t *labels; /* sorted by name */
    size_t nlabels;
    int64_t ts;
    double v;
} vg_rws_sample;

/* Encode samples[0..n) (grouped by series: samples of one series share the
 * same labels pointer and come in order) as a snappy-compressed WriteRequest
 * into out (reset first). VG_ENOMEM. */
vg_err_t vg_rws_encode(const vg_rws_sample *samples, size_t n, vg_buf *out, vg_error *err);

/* tls_config.server_name: curl checks the certificate against the URL's host
 * and sends it as SNI, so the request URL names server_name and a
 * CURLOPT_CONNECT_TO entry sends the connection to the URL's real address.
 * Fills *url_out ("scheme://server_name:port/path"), *connect_to
 * ("server_name:port:host:port") and *host ("host[:port]" as written, for the
 * Host header); each is vg_malloc'd. VG_EINVAL for a URL without "://". */
vg_err_t vg_rws_sni_url(const char *url, const char *server_name, char **url_out, char **connect_to,
                        char **host);

/* Backoff after attempt (0-based) failures: min * 2^attempt capped at max. */
int64_t vg_rws_backoff_ms(int64_t min_ms, int64_t max_ms, unsigned attempt);

#endif
