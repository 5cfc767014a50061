/*
 * inhibit.h - Alertmanager inhibition over the dispatcher's current alerts.
 *
 * The inhibitor keeps, per rule, the alerts that match the rule's source
 * side and are unresolved, so a check is one scan of a short list rather
 * than of every alert. Semantics are Alertmanager's: only unresolved source
 * alerts inhibit; `equal` labels missing on both sides count as equal; an
 * alert that matches both sides of a rule cannot be inhibited by a source
 * alert that also matches both sides (itself included).
 */
#ifndef VIGIL_ALERTING_INHIBIT_H
#define VIGIL_ALERTING_INHIBIT_H

#include <stdint.h>

#include "alerting/alert.h"
#include "alerting/amconfig.h"

typedef struct vg_inhibitor vg_inhibitor_t;

/* New inhibitor for cfg's inhibit_rules (cfg is borrowed and must outlive it). */
vg_inhibitor_t *vg_inhibitor_new(const vg_amconfig_t *cfg);
void vg_inhibitor_free(vg_inhibitor_t *in);
/* Switch to cfg's inhibit_rules (cfg borrowed, as for new), rebuilding the
 * source caches from alerts (every alert the caller holds). Checks see the
 * old rules or the new ones, never a half-built set; on VG_ENOMEM nothing
 * changed. Thread-safe. */
vg_err_t vg_inhibitor_reload(vg_inhibitor_t *in, const vg_amconfig_t *cfg, const vg_alert_t *alerts,
                             size_t n);
/* Record the latest state of an alert (keyed by its label fingerprint);
 * a resolved alert stops inhibiting. Thread-safe. */
vg_err_t vg_inhibitor_put(vg_inhibitor_t *in, const vg_alert_t *a);
/* Is an alert with these labels inhibited at now? Thread-safe. */
int vg_inhibitor_mutes(vg_inhibitor_t *in, const vg_label_t *l, size_t n, int64_t now_ms);
/* vg_inhibitor_mutes that also sets *by (when muted and by is non-NULL) to the
 * Alertmanager fingerprint of the inhibiting alert, for `inhibitedBy`. */
int vg_inhibitor_mutes_by(vg_inhibitor_t *in, const vg_label_t *l, size_t n, int64_t now_ms,
                          uint64_t *by);

#endif
