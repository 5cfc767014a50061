/*
 * nflog.h - the notification log: what each receiver was last told.
 *
 * Keyed by group key + receiver integration, an entry holds the hashes of
 * the firing and resolved alerts last notified and when. The dispatcher
 * asks it whether a flush must notify (Alertmanager's DedupStage) and logs
 * each successful notification. The log is rewritten atomically under the
 * data dir after every change, so a restart neither re-pages nor forgets to
 * resolve; entries expire after a retention period (Alertmanager: 120h).
 */
#ifndef VIGIL_ALERTING_NFLOG_H
#define VIGIL_ALERTING_NFLOG_H

#include <stddef.h>
#include <stdint.h>

#include "vigil/error.h"

typedef struct vg_nflog vg_nflog_t;

/* Open the log, loading <dir>/nflog when present (dir NULL = memory only).
 * retention_ms 0 = 120h. A corrupt file is VG_ECORRUPT with a message. */
vg_err_t vg_nflog_open(const char *dir, int64_t retention_ms, vg_nflog_t **out, vg_error *err);
/* Free (the file stays). NULL is a no-op. */
void vg_nflog_free(vg_nflog_t *l);

/* Must a flush with these firing/resolved alert hashes notify key at now?
 * Alertmanager's rules: no entry -> only when something fires; a firing
 * alert not notified before -> yes; nothing firing -> only if the last
 * notification had firing alerts; send_resolved and a newly resolved alert
 * -> yes; otherwise only once repeat_ms passed since the last one.
 * Thread-safe. */
int vg_nflog_needs_update(vg_nflog_t *l, const char *key, const uint64_t *firing, size_t nf,
                          const uint64_t *resolved, size_t nr, int send_resolved, int64_t repeat_ms,
                          int64_t now_ms);

/* Record a successful notification and persist. Thread-safe. */
vg_err_t vg_nflog_log(vg_nflog_t *l, const char *key, const uint64_t *firing, size_t nf,
                      const uint64_t *resolved, size_t nr, int64_t now_ms, vg_error *err);

/* Number of live entries (tests, self-metrics). */
size_t vg_nflog_count(vg_nflog_t *l);

#endif
