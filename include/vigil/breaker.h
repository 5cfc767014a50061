/*
 * breaker.h - a circuit breaker per sink (the agent's ship sinks, the
 * collector's SIEM outputs).
 *
 * When a sink keeps failing, hammering it wastes the ship thread's time
 * (each Kafka attempt can wait for a message timeout) and the peer's, so
 * after `failures` consecutive failures the breaker opens: batches go
 * straight to the disk spool without trying the sink. After `open_ms` it
 * goes half-open and lets up to `probes` requests be in flight at once;
 * `successes` successes close it, any failure re-opens it for another `open_ms`.
 *
 * Time is an explicit argument (monotonic milliseconds) so tests drive it
 * without sleeping. Not thread-safe: the ship thread owns its breakers.
 */
#ifndef VIGIL_BREAKER_H
#define VIGIL_BREAKER_H

#include <stdint.h>

#include "vigil/metrics.h"

typedef enum vg_breaker_state {
    VG_BREAKER_CLOSED = 0,
    VG_BREAKER_OPEN = 1,
    VG_BREAKER_HALF_OPEN = 2,
} vg_breaker_state;

typedef struct vg_breaker_opts {
    int failures;    /* consecutive failures that open it; 0 = 5 */
    int64_t open_ms; /* time open before probing; 0 = 30000 */
    int probes;      /* requests allowed while half-open; 0 = 3 */
    int successes;   /* successes in half-open that close it; 0 = 2 */
} vg_breaker_opts;

typedef struct vg_breaker {
    vg_breaker_opts o;
    vg_breaker_state state;
    int fails;           /* consecutive failures while closed */
    int probes_inflight; /* half-open requests let through and not yet answered */
    int probe_successes; /* successes since half-open */
    int64_t opened_ms;   /* when it last opened */
    vg_metric_t *gauge;  /* names->gauge{label=which} */
    vg_metric_t *opens;  /* names->opens{label=which} */
    const char *log;     /* log component */
} vg_breaker_t;

/* The metric names a user gives its breakers, so each keeps its own series
 * (the agent: vigil_agent_sink_breaker_state{sink}; the SIEM forwarder:
 * vigil_siem_breaker_state{output}). */
typedef struct vg_breaker_names {
    const char *gauge; /* state gauge: 0 closed, 1 open, 2 half-open */
    const char *opens; /* counter of transitions to open */
    const char *label; /* label name; the value is init's `which` */
    const char *log;   /* log component */
} vg_breaker_names;

/* Set up a closed breaker; o may be NULL (defaults). m or names may be NULL
 * (no metrics); which is the label value. Holds no heap memory. */
void vg_breaker_init(vg_breaker_t *b, const vg_breaker_opts *o, const vg_breaker_names *names,
                     const char *which, vg_metrics_t *m);
/* State at now (open turns half-open once open_ms has passed). */
vg_breaker_state vg_breaker_state_at(vg_breaker_t *b, int64_t now_ms);
/* Would a request be allowed now? Does not use up a probe. */
int vg_breaker_ready(vg_breaker_t *b, int64_t now_ms);
/* Ask to send a request now: 1 = go (uses up a probe when half-open), 0 = no. */
int vg_breaker_allow(vg_breaker_t *b, int64_t now_ms);
/* Report the outcome of an allowed request; every allowed request must be
 * reported once (a request the peer refused for good still counts as success:
 * the peer is up). */
void vg_breaker_success(vg_breaker_t *b, int64_t now_ms);
void vg_breaker_failure(vg_breaker_t *b, int64_t now_ms);
/* When an open breaker turns half-open (meaningful only while open). */
int64_t vg_breaker_reopen_at(const vg_breaker_t *b);

#endif
