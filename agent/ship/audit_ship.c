/*
 * audit_ship.c - the audit path (audit_ship.h): one thread that tails, parses,
 * batches and ships synchronously, then commits checkpoints.
 *
 * Why synchronous: the checkpoint may only move past lines the sink has
 * acknowledged. With one thread that sends a batch, waits for its
 * acknowledgement and then commits, "acknowledged" is simply "everything
 * handed out so far", and a failure needs no bookkeeping: the line that
 * would not fit is refused and the tailer offers it again later. Batches are
 * cut per input (one tenant each) when full, when the tailer has caught up,
 * or when the oldest pending line waited output.batch_max_delay.
 *
 * A batch's records live in one arena per input, reset once the batch is
 * acknowledged: thousands of small strings held until then, then freed at
 * once, were a good part of the agent's CPU per audit line in malloc/free
 * (bench/audit_vs_rsyslog).
 */
#include "audit_ship.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent/config.h"
#include "audit/audit.h"
#include "audit/dlq.h"
#include "sink.h"
#include "ship.h"
#include "tail/tail.h"
#include "vigil/alloc.h"
#include "vigil/arena.h"
#include "vigil/clock.h"
#include "vigil/envelope.h"
#include "vigil/log.h"

#define LOGC        "audit"
#define MAX_RECORDS 5000
#define MAX_BACKOFF 5000

typedef struct input {
    vg_audit_schema schema;
    vg_redactor_t *redact;
    const char *tenant;
    Vigil__V1__AuditRecord **recs;
    size_t nrecs, cap, bytes;
    vg_arena_t *arena; /* the pending records and their strings */
} input_t;

typedef struct dead {
    size_t input;
    const char *reason;
    char *json;
    size_t len;
} dead_t;

struct vg_audit_ship {
    const vg_agent_config_t *cfg;
    vg_tail_input *tin;
    input_t *in;
    size_t n;
    vg_tail_t *tail;
    vg_sink_t *sink;
    vg_dlq_t *dlq;
    dead_t *dl;
    size_t ndl, dlcap;
    char agent_id[160];
    char seq_path[4200];
    uint64_t seq, acked_seq;
    int64_t oldest_ms; /* mono time of the oldest pending line; 0 = none */
    int64_t backoff_ms;
    pthread_t th;
    int started;
    atomic_int stop;
    vg_metric_t *dlq_total[VG_AUDIT_REASON__COUNT], *records, *batches, *failures;
};

static void clear_input(input_t *in)
{
    vg_arena_reset(in->arena);
    in->nrecs = in->bytes = 0;
}

static void clear_dead(vg_audit_ship_t *a, size_t from)
{
    for (size_t i = from; i < a->ndl; i++) vg_free(a->dl[i].json);
    a->ndl = from;
}

/* The last acknowledged seq, written atomically (temp, fsync, rename). */
static vg_err_t save_seq(const vg_audit_ship_t *a)
{
    char tmp[4300], txt[32];
    int n = snprintf(txt, sizeof txt, "%" PRIu64 "\n", a->acked_seq);
    snprintf(tmp, sizeof tmp, "%s.tmp", a->seq_path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0) return VG_EIO;
    int bad = write(fd, txt, (size_t)n) != n || fsync(fd) != 0;
    bad |= close(fd) != 0;
    return bad || rename(tmp, a->seq_path) != 0 ? VG_EIO : VG_OK;
}

static void load_seq(vg_audit_ship_t *a)
{
    FILE *f = fopen(a->seq_path, "re");
    a->acked_seq = 0;
    if (f && fscanf(f, "%" SCNu64, &a->acked_seq) != 1) a->acked_seq = 0;
    if (f) fclose(f);
    a->seq = a->acked_seq;
}

/* Encode and send input i's pending records as one Batch. */
static vg_err_t send_input(vg_audit_ship_t *a, input_t *in, vg_error *err)
{
    Vigil__V1__AuditBatch ab = VIGIL__V1__AUDIT_BATCH__INIT;
    Vigil__V1__Batch b = VIGIL__V1__BATCH__INIT;
    uint8_t *buf = NULL;
    size_t len = 0;
    ab.records = in->recs;
    ab.n_records = in->nrecs;
    b.agent_id = a->agent_id;
    b.node = (char *)a->cfg->node;
    b.tenant = (char *)in->tenant;
    b.seq = a->seq + 1;
    b.created_ms = vg_clock_wall_ms();
    b.payload_case = VIGIL__V1__BATCH__PAYLOAD_AUDIT;
    b.audit = &ab;
    vg_err_t rc = vg_envelope_encode(&b, (int)a->cfg->zstd_level, &buf, &len, err);
    if (rc) return rc;
    vg_sink_msg msg = {
        .kind = VG_SINK_AUDIT, .tenant = in->tenant, .data = buf, .len = len, .seq = b.seq};
    rc = vg_sink_send(a->sink, &msg, err);
    vg_free(buf);
    if (rc) return rc;
    a->seq = b.seq;
    if (a->records) vg_metric_add(a->records, (double)in->nrecs);
    if (a->batches) vg_metric_inc(a->batches);
    clear_input(in);
    return VG_OK;
}

static vg_err_t send_dead(vg_audit_ship_t *a, vg_error *err)
{
    size_t done = 0;
    vg_err_t rc = VG_OK;
    for (; done < a->ndl; done++) {
        const dead_t *d = &a->dl[done];
        if ((rc = vg_dlq_send(a->dlq, a->in[d->input].tenant, d->reason, d->json, d->len, err)))
            break;
        vg_free(a->dl[done].json);
    }
    memmove(a->dl, a->dl + done, (a->ndl - done) * sizeof *a->dl);
    a->ndl -= done;
    return rc;
}

/* Ship everything pending; only when all of it was acknowledged, persist
 * the seq and the tail checkpoint. */
static vg_err_t flush(vg_audit_ship_t *a)
{
    vg_error err = {0};
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < a->n && !rc; i++)
        if (a->in[i].nrecs) rc = send_input(a, &a->in[i], &err);
    if (!rc && a->ndl) rc = send_dead(a, &err);
    if (!rc && a->seq != a->acked_seq) {
        a->acked_seq = a->seq;
        if (save_seq(a)) vg_log_error(LOGC, "cannot save batch seq", "path=%s", a->seq_path);
    }
    if (!rc) rc = vg_tail_commit(a->tail, &err);
    if (rc) {
        if (a->failures) vg_metric_inc(a->failures);
        vg_log_warn(LOGC, "audit shipping failed; tailing waits", "err=\"%s\"",
                    vg_error_msg(&err, rc));
        return rc;
    }
    a->oldest_ms = 0;
    a->backoff_ms = 0;
    return VG_OK;
}

static int pending(const vg_audit_ship_t *a)
{
    if (a->ndl) return 1;
    for (size_t i = 0; i < a->n; i++)
        if (a->in[i].nrecs) return 1;
    return 0;
}

static vg_err_t add_dead(vg_audit_ship_t *a, const vg_tail_line *l, vg_audit_reason why,
                         const char *detail)
{
    input_t *in = &a->in[l->input];
    vg_buf b;
    if (a->ndl == a->dlcap) {
        size_t cap = a->dlcap ? a->dlcap * 2 : 16;
        dead_t *g = vg_realloc(a->dl, cap * sizeof *g);
        if (!g) return VG_ENOMEM;
        a->dl = g;
        a->dlcap = cap;
    }
    vg_buf_init(&b, 0);
    if (vg_dlq_render(in->redact, in->tenant, vg_audit_reason_name(why), detail, l->data, l->len,
                      l->file_id, l->offset, &b)) {
        vg_buf_free(&b);
        return VG_ENOMEM;
    }
    dead_t *d = &a->dl[a->ndl++];
    d->input = l->input;
    d->reason = vg_audit_reason_name(why);
    d->len = b.len;
    d->json = vg_buf_steal(&b, NULL);
    if (a->dlq_total[why]) vg_metric_inc(a->dlq_total[why]);
    vg_log_debug(LOGC, "dead letter", "reason=%s file_id=%s offset=%" PRIu64, d->reason, l->file_id,
                 l->offset);
    return VG_OK;
}

/* The record r as an AuditRecord in the input's arena (r is left to the caller). */
static vg_err_t add_rec(vg_audit_ship_t *a, const vg_tail_line *l, const vg_audit_rec *r)
{
    input_t *in = &a->in[l->input];
    if (in->nrecs == in->cap) {
        size_t cap = in->cap ? in->cap * 2 : 64;
        Vigil__V1__AuditRecord **g = vg_realloc(in->recs, cap * sizeof *g);
        if (!g) return VG_ENOMEM;
        in->recs = g;
        in->cap = cap;
    }
    Vigil__V1__AuditRecord *p = vg_arena_alloc(in->arena, sizeof *p);
    if (!p) return VG_ENOMEM;
    vigil__v1__audit_record__init(p);
    char **dst[] = {&p->user_id,  &p->session_id, &p->action,
                    &p->resource, &p->result,     &p->ip_address};
    for (int i = VG_AF_USER_ID; i < VG_AF__COUNT; i++)
        if (!(*dst[i - VG_AF_USER_ID] = vg_arena_strdup(in->arena, r->field[i]))) return VG_ENOMEM;
    if (!(p->original_json = vg_arena_strndup(in->arena, r->json, r->json_len)) ||
        !(p->file_id = vg_arena_strdup(in->arena, l->file_id)))
        return VG_ENOMEM;
    p->ts_ms = r->ts_ms;
    p->offset = l->offset;
    in->bytes += r->json_len + 128;
    in->recs[in->nrecs++] = p;
    return VG_OK;
}

static int full(const vg_audit_ship_t *a, const input_t *in)
{
    return in->nrecs >= MAX_RECORDS || in->bytes >= a->cfg->batch_max_bytes || a->ndl >= 1000;
}

/* The tailer's callback: refuse the line (VG_ERETRY) when a full batch cannot be shipped. */
static vg_err_t on_line(void *ud, const vg_tail_line *l)
{
    vg_audit_ship_t *a = ud;
    input_t *in = &a->in[l->input];
    vg_audit_rec rec;
    vg_audit_reason why = VG_AUDIT_TOO_LONG;
    char detail[256];
    vg_err_t rc = VG_OK;
    if (full(a, in) && flush(a)) return VG_ERETRY;
    if (l->too_long)
        snprintf(detail, sizeof detail, "line of %" PRIu64 " bytes is over max_line_bytes %zu",
                 l->full_len, in->schema.max_line_bytes);
    else if ((rc = vg_audit_parse(&in->schema, l->data, l->len, vg_clock_wall_ms(), &rec, &why,
                                  detail, sizeof detail)))
        return rc;
    if (why == VG_AUDIT_OK) {
        rc = add_rec(a, l, &rec);
        vg_audit_rec_clear(&rec);
    } else {
        rc = add_dead(a, l, why, detail);
    }
    if (!rc && !a->oldest_ms) a->oldest_ms = vg_clock_mono_ms();
    return rc;
}

/* One round: a tail pass, then a flush when caught up or the oldest line is old. */
static int64_t round_once(vg_audit_ship_t *a)
{
    int64_t now = vg_clock_mono_ms(), w = -1;
    vg_err_t rc = vg_tail_poll(a->tail, now, &w);
    int caught_up = !rc && w != 0;
    int old = a->oldest_ms && now - a->oldest_ms >= a->cfg->batch_max_delay_ms;
    if (pending(a) && (caught_up || old) && flush(a)) rc = VG_ERETRY;
    if (rc) { /* the sink is failing: back off, the files keep the data */
        a->backoff_ms = a->backoff_ms ? a->backoff_ms * 2 : 100;
        if (a->backoff_ms > MAX_BACKOFF) a->backoff_ms = MAX_BACKOFF;
        return a->backoff_ms;
    }
    return w;
}

static void *run(void *arg)
{
    vg_audit_ship_t *a = arg;
    while (!atomic_load(&a->stop)) {
        int64_t w = round_once(a);
        if (w == 0) continue;
        if (w < 0 || w > 250) w = 250; /* also the polling fallback and the stop check */
        vg_tail_wait(a->tail, (int)w);
    }
    return NULL;
}

static void free_inputs(vg_audit_ship_t *a)
{
    for (size_t i = 0; a->in && i < a->n; i++) {
        clear_input(&a->in[i]);
        vg_free(a->in[i].recs);
        vg_arena_free(a->in[i].arena);
        vg_redactor_free(a->in[i].redact);
    }
    vg_free(a->in);
    vg_free(a->tin);
}

void vg_audit_ship_free(vg_audit_ship_t *a)
{
    if (!a) return;
    if (a->started) {
        atomic_store(&a->stop, 1);
        pthread_join(a->th, NULL);
        if (pending(a) && flush(a) == VG_OK)
            vg_log_info(LOGC, "shipped the pending audit records at shutdown", NULL);
    }
    vg_tail_free(a->tail);
    clear_dead(a, 0);
    vg_free(a->dl);
    vg_dlq_free(a->dlq);
    vg_sink_free(a->sink);
    free_inputs(a);
    vg_free(a);
}

static vg_err_t build_input(vg_audit_ship_t *a, size_t i, vg_error *err)
{
    const vg_audit_log_config_t *c = &a->cfg->audit_logs[i];
    input_t *in = &a->in[i];
    vg_redact_rule *rules = c->nredact ? vg_calloc(c->nredact, sizeof *rules) : NULL;
    if (c->nredact && !rules) return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t k = 0; k < c->nredact; k++)
        rules[k] =
            (vg_redact_rule){c->redact[k].name, c->redact[k].pattern, c->redact[k].replacement};
    vg_err_t rc = vg_redactor_new(rules, c->nredact, &in->redact, err);
    vg_free(rules);
    if (rc) return rc;
    /* a full batch (estimated bytes) fits in one block, so a reset frees nothing */
    size_t block = a->cfg->batch_max_bytes * 2;
    if (!(in->arena = vg_arena_new(block < (8u << 20) ? block : (8u << 20))))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    in->tenant = c->tenant ? c->tenant : a->cfg->tenant;
    in->schema = (vg_audit_schema){.required = c->required_fields,
                                   .nrequired = c->nrequired_fields,
                                   .mapping = c->mapping,
                                   .nmapping = c->nmapping,
                                   .max_line_bytes = c->max_line_bytes,
                                   .redact = in->redact};
    a->tin[i] = (vg_tail_input){.paths = c->paths,
                                .npaths = c->npaths,
                                .exclude = c->exclude,
                                .nexclude = c->nexclude,
                                .max_line_bytes = c->max_line_bytes,
                                .read_from_head = c->read_from_head,
                                .rate = c->rate_limit,
                                .burst = (double)c->rate_burst};
    return VG_OK;
}

static void init_metrics(vg_audit_ship_t *a, vg_metrics_t *m)
{
    char labels[64];
    if (!m) return;
    for (int r = 1; r < VG_AUDIT_REASON__COUNT; r++) {
        snprintf(labels, sizeof labels, "reason=\"%s\"", vg_audit_reason_name(r));
        a->dlq_total[r] =
            vg_metrics_counter(m, "vigil_agent_audit_dlq_total",
                               "Audit lines sent to the dead-letter path, by reason.", labels);
    }
    a->records = vg_metrics_counter(m, "vigil_agent_audit_records_total",
                                    "Audit records acknowledged by the sink.", NULL);
    a->batches = vg_metrics_counter(m, "vigil_agent_audit_batches_total",
                                    "Audit batches acknowledged by the sink.", NULL);
    a->failures = vg_metrics_counter(m, "vigil_agent_audit_ship_failures_total",
                                     "Audit flushes that failed and will be retried.", NULL);
}

static vg_err_t open_state(vg_audit_ship_t *a, char *ckpt, size_t n, vg_error *err)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/audit", a->cfg->data_dir);
    if ((mkdir(a->cfg->data_dir, 0750) && errno != EEXIST) || (mkdir(dir, 0750) && errno != EEXIST))
        return vg_error_set(err, VG_EIO, "audit: cannot create %s: %s", dir, strerror(errno));
    snprintf(ckpt, n, "%s/checkpoints", dir);
    snprintf(a->seq_path, sizeof a->seq_path, "%s/batch_seq", dir);
    vg_ship_agent_id(a->cfg->node, a->cfg->data_dir, a->agent_id, sizeof a->agent_id - 8);
    strcat(a->agent_id, "/audit");
    load_seq(a);
    return VG_OK;
}

static vg_err_t open_outputs(vg_audit_ship_t *a, vg_metrics_t *m, vg_error *err)
{
    const vg_agent_config_t *c = a->cfg;
    vg_dlq_opts d = {.http_url = c->http_url,
                     .kafka_brokers = c->kafka_brokers,
                     .kafka_topic = c->kafka_audit_dlq_topic,
                     .props = c->kafka_properties,
                     .nprops = c->nkafka_properties};
    vg_err_t rc = vg_sink_from_config(c, m, &a->sink, err);
    return rc ? rc : vg_dlq_new(&d, &a->dlq, err);
}

vg_err_t vg_audit_ship_new(const vg_agent_config_t *cfg, vg_metrics_t *m, vg_audit_ship_t **out,
                           vg_error *err)
{
    char ckpt[4200];
    vg_err_t rc = VG_OK;
    *out = NULL;
    if (!cfg->naudit_logs) return VG_OK;
    vg_audit_ship_t *a = vg_calloc(1, sizeof *a);
    if (!a || !(a->in = vg_calloc(cfg->naudit_logs, sizeof *a->in)) ||
        !(a->tin = vg_calloc(cfg->naudit_logs, sizeof *a->tin))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto fail;
    }
    a->cfg = cfg;
    for (; a->n < cfg->naudit_logs; a->n++)
        if ((rc = build_input(a, a->n, err))) goto fail;
    init_metrics(a, m);
    if ((rc = open_state(a, ckpt, sizeof ckpt, err)) || (rc = open_outputs(a, m, err))) goto fail;
    vg_tail_opts to = {
        .inputs = a->tin, .ninputs = a->n, .checkpoint_path = ckpt, .on_line = on_line, .ud = a};
    if ((rc = vg_tail_new(&to, &a->tail, err))) goto fail;
    if (pthread_create(&a->th, NULL, run, a)) {
        rc = vg_error_set(err, VG_ENOMEM, "audit: cannot start thread");
        goto fail;
    }
    a->started = 1;
    *out = a;
    return VG_OK;
fail:
    if (a) a->n = a->n < cfg->naudit_logs ? a->n + 1 : a->n; /* the half-built input too */
    vg_audit_ship_free(a);
    return rc;
}
