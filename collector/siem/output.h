/*
 * output.h - the shape of a SIEM output (Fluent Bit's output plugins are the
 * model): the forwarder (siem.c) owns the cursor, batching, retries and the
 * circuit breaker; an output only knows how to put a batch of stored audit
 * records on its wire and to say whether the receiver has them.
 *
 * An output is driven by exactly one forwarder thread, so its state needs no
 * locking. send() returns VG_OK only when the whole batch has reached the
 * receiver as far as the protocol can tell (syslog over TCP: every byte
 * written and acknowledged by the peer's TCP stack; HEC: a 2xx answer). Any
 * other result means "none of it counts": the forwarder keeps its cursor and
 * sends the same records again later, so delivery is at least once.
 * One exception: VG_EPROTO means the receiver refused these records for
 * good (HEC 400: a malformed event); retrying cannot help, so the forwarder
 * logs the message, counts the records in vigil_siem_records_dropped_total
 * and moves past them rather than wedge the queue.
 */
#ifndef VIGIL_SIEM_OUTPUT_H
#define VIGIL_SIEM_OUTPUT_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

/* One audit record as the store keeps it. line is the stored JSON object
 * ({"ts_ms":..,"tenant":..,"user_id":..,"session_id":..,"action":..,
 * "resource":..,"result":..,"ip_address":..,"file_id":..,"offset":..,
 * "original":"<redacted original JSON>"}), not NUL-terminated. */
typedef struct vg_siem_rec {
    const char *tenant;
    int64_t ts_ms;
    const char *line;
    size_t len;
} vg_siem_rec;

/* One `siem:` entry, decoded by siem.c. Strings are borrowed from the
 * config and live as long as the forwarder. */
typedef struct vg_siem_output_conf {
    const char *name; /* `name:`, unique; default "<type>-<index>" */
    const char *type; /* "syslog" | "splunk_hec" */
    /* syslog */
    const char *address;  /* host:port */
    int tls;              /* RFC 5425 */
    const char *ca_file;  /* tls.ca_file: verify the server against it */
    const char *cert_file, *key_file; /* tls client certificate, optional */
    const char *server_name;          /* tls.server_name (SNI + verification) */
    int insecure_skip_verify;
    const char *app_name; /* RFC 5424 APP-NAME; default "vigil" */
    int facility;         /* default 13 (log audit) */
    /* splunk_hec */
    const char *url;   /* base URL; events go to <url>/services/collector/event */
    const char *token; /* sent as "Authorization: Splunk <token>"; never logged */
    const char *index, *source, *sourcetype; /* optional HEC metadata */
    /* both */
    int64_t timeout_ms; /* per send; default 10 s */
    size_t batch_records; /* records per send; default 500 */
} vg_siem_output_conf;

typedef struct vg_siem_output_ops {
    const char *type;
    /* Check c and set up *state (no I/O needed yet). */
    vg_err_t (*open)(const vg_siem_output_conf *c, void **state, vg_error *err);
    /* Deliver recs[0..n) (see above). May block up to c->timeout_ms. */
    vg_err_t (*send)(void *state, const vg_siem_rec *recs, size_t n, vg_error *err);
    void (*close)(void *state);
} vg_siem_output_ops;

extern const vg_siem_output_ops vg_siem_out_syslog;
extern const vg_siem_output_ops vg_siem_out_hec;

/* RFC 5424 formatting, exposed for unit tests and the fuzzer: append one
 * octet-counted frame ("<len> <msg>") for r to out. hostname may be NULL. */
struct vg_buf;
vg_err_t vg_siem_syslog_frame(const vg_siem_output_conf *c, const char *hostname,
                              const vg_siem_rec *r, struct vg_buf *out);

#endif
