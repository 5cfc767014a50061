/*
 * breaker.c - closed -> open -> half-open -> closed, with injected time.
 *
 * A plain struct with no locks and no allocation: the ship thread embeds
 * one per sink (the SIEM forwarder one per output thread) and is its only user, and a breaker that
 * cannot fail to be created cannot leave the ship path half built. The state is mirrored into a
 * gauge on every transition (0 closed, 1 open, 2 half-open) so an operator sees an outage as a step
 * in one series.
 */
#include "vigil/breaker.h"

#include <stdio.h>
#include <string.h>

#include "vigil/log.h"

static const char *names[] = {"closed", "open", "half-open"};

static void set_state(vg_breaker_t *b, vg_breaker_state s, int64_t now_ms)
{
    if (b->state == s) return;
    vg_log_info(b->log, "circuit breaker changed state", "from=%s to=%s", names[b->state],
                names[s]);
    b->state = s;
    if (s == VG_BREAKER_OPEN) {
        b->opened_ms = now_ms;
        vg_metric_inc(b->opens);
    }
    b->probes_inflight = b->probe_successes = 0;
    b->fails = 0;
    vg_metric_set(b->gauge, (double)s);
}

void vg_breaker_init(vg_breaker_t *b, const vg_breaker_opts *o, const vg_breaker_names *names,
                     const char *which, vg_metrics_t *m)
{
    memset(b, 0, sizeof(*b));
    b->log = names && names->log ? names->log : "breaker";
    if (o) b->o = *o;
    if (b->o.failures <= 0) b->o.failures = 5;
    if (b->o.open_ms <= 0) b->o.open_ms = 30000;
    if (b->o.probes <= 0) b->o.probes = 3;
    if (b->o.successes <= 0) b->o.successes = 2;
    if (b->o.successes > b->o.probes) b->o.successes = b->o.probes;
    if (!m || !names) return;
    char lab[160];
    snprintf(lab, sizeof(lab), "%s=\"%s\"", names->label, which ? which : "");
    b->gauge = vg_metrics_gauge(m, names->gauge,
                                "Circuit breaker state: 0 closed, 1 open, 2 half-open.", lab);
    b->opens = vg_metrics_counter(m, names->opens, "Times the circuit breaker opened.", lab);
    vg_metric_set(b->gauge, 0);
}

vg_breaker_state vg_breaker_state_at(vg_breaker_t *b, int64_t now_ms)
{
    if (b->state == VG_BREAKER_OPEN && now_ms - b->opened_ms >= b->o.open_ms)
        set_state(b, VG_BREAKER_HALF_OPEN, now_ms);
    return b->state;
}

int vg_breaker_ready(vg_breaker_t *b, int64_t now_ms)
{
    switch (vg_breaker_state_at(b, now_ms)) {
    case VG_BREAKER_CLOSED: return 1;
    case VG_BREAKER_HALF_OPEN: return b->probes_inflight < b->o.probes;
    default: return 0;
    }
}

int vg_breaker_allow(vg_breaker_t *b, int64_t now_ms)
{
    if (!vg_breaker_ready(b, now_ms)) return 0;
    if (b->state == VG_BREAKER_HALF_OPEN) b->probes_inflight++;
    return 1;
}

void vg_breaker_success(vg_breaker_t *b, int64_t now_ms)
{
    if (b->state == VG_BREAKER_CLOSED) {
        b->fails = 0;
    } else if (b->state == VG_BREAKER_HALF_OPEN) {
        if (b->probes_inflight > 0) b->probes_inflight--;
        if (++b->probe_successes >= b->o.successes) set_state(b, VG_BREAKER_CLOSED, now_ms);
    }
}

void vg_breaker_failure(vg_breaker_t *b, int64_t now_ms)
{
    if (b->state == VG_BREAKER_HALF_OPEN) {
        set_state(b, VG_BREAKER_OPEN, now_ms);
    } else if (b->state == VG_BREAKER_CLOSED && ++b->fails >= b->o.failures) {
        set_state(b, VG_BREAKER_OPEN, now_ms);
    }
}

int64_t vg_breaker_reopen_at(const vg_breaker_t *b)
{
    return b->opened_ms + b->o.open_ms;
}
