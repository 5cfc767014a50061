/*
 * scrape.h - the agent's scrape loop: Prometheus scrape semantics, one thread.
 *
 * A vg_scraper_t owns the targets of every scrape config (static_configs
 * and file_sd_configs, through relabel_configs; file_sd changes are picked
 * up while running), and one scrape thread that drives every target's HTTP request
 * through a single libcurl multi handle, sleeping in curl_multi_poll until
 * the next scrape is due. Each finished scrape is parsed (text 0.0.4 or
 * OpenMetrics, chosen by the response Content-Type), checked against the
 * job's limits, merged with the target labels and emitted sample by sample
 * through a callback (after metric_relabel_configs), followed by staleness
 * markers, the synthetic series
 * (up, scrape_duration_seconds, ...) and one commit call. The callbacks run
 * on the scrape thread; their signature matches vg_batcher_add and
 * vg_batcher_commit so the agent can wire them straight through.
 *
 * Semantics follow Prometheus: a scrape that fails (transport, HTTP status
 * other than 200, body over body_size_limit, parse error, sample_limit or
 * label_limit exceeded) emits none of its samples, up=0, and staleness
 * markers for every series of the previous scrape.
 */
#ifndef VIGIL_AGENT_SCRAPE_H
#define VIGIL_AGENT_SCRAPE_H

#include <stddef.h>
#include <stdint.h>

#include "../config.h" /* agent/config.h, never collector/config.h */
#include "vigil/buf.h"
#include "vigil/error.h"
#include "vigil/labels.h"
#include "vigil/metrics.h"

typedef struct vg_scraper vg_scraper_t;

/* One sample: labels sorted by name, __name__ included, valid during the call. */
typedef vg_err_t (*vg_scrape_emit_fn)(void *ud, const vg_label_t *labels, size_t n, int64_t ts_ms,
                                      double v);
/* One whole scrape (its samples, stale markers and report series) as ts[0..len):
 * consecutive MetricBatch field-1 entries, each a prometheus.TimeSeries with
 * one sample, nsamples in all; matches vg_batcher_add_encoded. */
typedef vg_err_t (*vg_scrape_emit_encoded_fn)(void *ud, const void *ts, size_t len,
                                              size_t nsamples);
/* Encoding straight into the consumer's buffer (vg_scraper_set_emit_into):
 * begin hands over that buffer, held for the scraper until end (NULL:
 * refused, this scrape goes through the emit_encoded callback instead);
 * end says how many bytes were appended after its length at begin and how
 * many samples they hold. Matches vg_batcher_encode_begin / _end. */
typedef vg_buf *(*vg_scrape_into_begin_fn)(void *ud);
typedef void (*vg_scrape_into_end_fn)(void *ud, size_t len, size_t nsamples);
/* End of one target's scrape (after its samples, stale markers and up/...). */
typedef void (*vg_scrape_commit_fn)(void *ud);

/* Build the targets of cfg (borrowed: must outlive the scraper). metrics may
 * be NULL. VG_ECONFIG for a target that is not host:port. Does not start the
 * thread. On success free *out with vg_scraper_free. */
vg_err_t vg_scraper_new(const vg_agent_config_t *cfg, vg_scrape_emit_fn emit,
                        vg_scrape_commit_fn commit, void *ud, vg_metrics_t *metrics,
                        vg_scraper_t **out, vg_error *err);
/* Emit each scrape encoded, in one call to fn (ud as given to new), instead
 * of sample by sample, with the config's external labels merged in as the
 * lowest-priority labels. Call before vg_scraper_start. VG_ENOMEM. */
vg_err_t vg_scraper_set_emit_encoded(vg_scraper_t *s, vg_scrape_emit_encoded_fn fn);
/* With emit_encoded set: write each scrape's bytes straight into the buffer
 * begin returns (no copy of the scrape afterwards); the same bytes as
 * emit_encoded would get. Call before vg_scraper_start. VG_EINVAL. */
vg_err_t vg_scraper_set_emit_into(vg_scraper_t *s, vg_scrape_into_begin_fn begin,
                                  vg_scrape_into_end_fn end);
/* Start the scrape thread; each target's first scrape is spread over its interval. */
vg_err_t vg_scraper_start(vg_scraper_t *s, vg_error *err);
/* Scrape every target once now and wait for all of them (tests, --once).
 * VG_EINVAL if the thread is running. Returns VG_OK even when targets fail. */
vg_err_t vg_scraper_run_once(vg_scraper_t *s, vg_error *err);
/* Stop the thread promptly (in-flight requests are abandoned) and free. NULL is a no-op. */
void vg_scraper_free(vg_scraper_t *s);

/* Number of targets, and target i's URL / health (1 up, 0 down, -1 not yet
 * scraped). With file_sd the set changes while the thread runs: the URL is
 * valid until the next change, so read these from tests or after a stop. */
size_t vg_scraper_ntargets(const vg_scraper_t *s);
const char *vg_scraper_target_url(const vg_scraper_t *s, size_t i);
int vg_scraper_target_health(const vg_scraper_t *s, size_t i);

/* The Accept header sent with every scrape. */
#define VG_SCRAPE_ACCEPT                                                                           \
    "application/openmetrics-text;version=1.0.0;q=0.5,"                                            \
    "application/openmetrics-text;version=0.0.1;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"

#endif
