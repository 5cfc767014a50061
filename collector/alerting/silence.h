/*
 * silence.h - Alertmanager silences: store, persistence and the v2 API.
 *
 * A silence is matchers plus a [startsAt, endsAt) window, with createdBy and
 * comment. State (pending, active, expired) follows from the clock. The
 * store is persisted to `<data_dir>/silences` (write temp, fsync, rename) on
 * every change, so silences survive restarts; expired silences are kept
 * for a retention period as Alertmanager keeps them, then dropped.
 */
#ifndef VIGIL_ALERTING_SILENCE_H
#define VIGIL_ALERTING_SILENCE_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"
#include "vigil/httpd.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_silences vg_silences_t;

/* Open the store, loading <dir>/silences when present (dir NULL = memory
 * only). A corrupt file is VG_ECORRUPT with a message. */
vg_err_t vg_silences_open(const char *dir, vg_metrics_t *m, vg_silences_t **out, vg_error *err);
void vg_silences_free(vg_silences_t *s);
/* Is an alert with these labels muted by an active silence at now? When
 * ids is non-NULL, up to max silence ids (NUL-terminated UUID strings of 37
 * bytes each) are written there; returns the number of muting silences. */
size_t vg_silences_mutes(vg_silences_t *s, const vg_label_t *l, size_t n, int64_t now_ms,
                         char (*ids)[37], size_t max);
/* Register GET/POST /api/v2/silences, GET/DELETE /api/v2/silence/{id}. */
vg_err_t vg_silences_register(vg_silences_t *s, vg_httpd_t *h);

#endif
