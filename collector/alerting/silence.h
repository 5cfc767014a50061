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
/* Create or update from an Alertmanager PostableSilence JSON object, as
 * POST /api/v2/silences does at now: without "id" a new silence (startsAt
 * clamped to now); with an id, an in-place update when Alertmanager allows
 * it (same matchers; active: same startsAt, endsAt not past; pending:
 * startsAt not past), otherwise the old one is expired and a new one made.
 * Writes the resulting id to id. VG_EINVAL (bad input, message),
 * VG_ENOTFOUND (unknown id), VG_EIO (not persisted). */
vg_err_t vg_silences_set_json(vg_silences_t *s, const char *json, size_t len, int64_t now_ms,
                              char id[37], vg_error *err);
/* Expire silence id at now (pending ones get startsAt = endsAt = now).
 * VG_ENOTFOUND, or VG_EINVAL when it is already expired. */
vg_err_t vg_silences_expire(vg_silences_t *s, const char *id, int64_t now_ms, vg_error *err);
/* Append the GettableSilences JSON array at now, filtered by Alertmanager
 * filter matchers (NULL/0 = all), sorted as Alertmanager sorts them. */
vg_err_t vg_silences_list_json(vg_silences_t *s, vg_matcher_t *const *filter, size_t nfilter,
                               int64_t now_ms, vg_buf *out);
/* Append one GettableSilence; VG_ENOTFOUND when there is no such id. */
vg_err_t vg_silences_get_json(vg_silences_t *s, const char *id, int64_t now_ms, vg_buf *out);

/* Register GET/POST /api/v2/silences, GET/DELETE /api/v2/silence/{id}, and a
 * minimal GET /api/v2/status for amtool. (silence_api.c) */
vg_err_t vg_silences_register(vg_silences_t *s, vg_httpd_t *h);

#endif
