/*
 * siem.h - the SIEM forwarder: one thread per configured output reads the
 * audit feed (auditstore/feed.h) from the output's durable cursor, sends
 * batches through the output (output.h) and advances the cursor only after
 * the output said the receiver has them.
 *
 * GDPR: forwarding is near-real-time, so a record normally reaches the SIEM
 * long before anyone can ask to erase its subject; an erasure in the audit
 * store does not reach into the feed. Records still waiting in the feed at
 * erasure time (an output down for a while) are forwarded as they were
 * stored, already redacted by the agent; erasing them at the SIEM is part of
 * the operator's erasure procedure there (docs/siem.md says so). Feed files
 * are deleted once every output has passed them.
 */
#ifndef VIGIL_SIEM_H
#define VIGIL_SIEM_H

#include <stddef.h>
#include <stdint.h>

#include "siem/output.h"
#include "vigil/buf.h"
#include "vigil/config.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

struct vg_feed;

/* One `siem:` entry as the config decodes it (converted to vg_siem_output_conf). */
typedef struct vg_siem_cfg {
    const char *type, *name, *address;
    struct {
        const char *ca_file, *cert_file, *key_file, *server_name;
        int insecure_skip_verify;
    } tls;
    int tls_on; /* a tls: section was given */
    const char *app_name;
    int64_t facility;
    const char *url, *token, *index, *source, *sourcetype;
    int64_t timeout_ms;
    uint64_t batch_records;
} vg_siem_cfg;

extern const vg_cfg_field_t vg_siem_config_schema[];
vg_err_t vg_siem_config_check(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj);
/* Fill out from c (index i names an entry without name: "<type>-<i>"); the
 * name is written into namebuf when generated. */
void vg_siem_conf_from_cfg(const vg_siem_cfg *c, size_t i, char *namebuf, size_t cap,
                           vg_siem_output_conf *out);

typedef struct vg_siem vg_siem_t;

/* Start one forwarder thread per output over feed (borrowed). Cursors of
 * names not in outs are removed. */
vg_err_t vg_siem_new(const vg_siem_cfg *outs, size_t n, struct vg_feed *feed, vg_metrics_t *m,
                     vg_siem_t **out, vg_error *err);
/* Stop the threads (an in-flight send finishes or times out first). */
void vg_siem_free(vg_siem_t *s);

/* HEC body for recs (exposed for tests): concatenated event objects. */
vg_err_t vg_siem_hec_body(const vg_siem_output_conf *c, const char *host, const vg_siem_rec *recs,
                          size_t n, vg_buf *out);

#endif
