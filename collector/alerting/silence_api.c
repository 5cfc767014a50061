/*
 * silence_api.c - Alertmanager's v2 silences API over the silence store.
 *
 * Same paths, JSON and status codes as Alertmanager, so amtool and
 * Grafana's Alertmanager data source work unchanged: GET/POST
 * /api/v2/silences, GET/DELETE /api/v2/silence/{id}. GET /api/v2/status is
 * a minimal Alertmanager-shaped answer (cluster ready, version, config,
 * uptime) for clients that ask before anything else. Errors are JSON
 * strings, as go-swagger writes them.
 */
#include <stdlib.h>
#include <string.h>

#include "alerting/silence_int.h"
#include "alerting/amconfig.h"
#include "vigil/alloc.h"
#include "vigil/clock.h"
#include "vigil/timefmt.h"

#define FILTERS_MAX 64

static int64_t started_ms;

/* Alertmanager's matchFilterLabels over the silence's matchers (name -> pattern). */
static int filter_ok(const vg_silence_t *x, vg_matcher_t *const *f, size_t nf)
{
    for (size_t i = 0; i < nf; i++) {
        const char *v = NULL;
        for (size_t k = 0; k < x->nms; k++)
            if (!strcmp(vg_matcher_name(x->ms[k]), vg_matcher_name(f[i])))
                v = vg_matcher_value(x->ms[k]);
        vg_match_op op = vg_matcher_op(f[i]);
        int negative = op == VG_MATCH_NEQ || op == VG_MATCH_NRE;
        if (!vg_matcher_value(f[i])[0] && (negative ? v != NULL : v == NULL)) continue;
        if (!vg_matcher_matches(f[i], v ? v : "")) return 0;
    }
    return 1;
}

static int state_rank(const char *st)
{
    return !strcmp(st, "active") ? 0 : !strcmp(st, "pending") ? 1 : 2;
}

typedef struct sort_item {
    const vg_silence_t *x;
    int rank;
    int64_t key;
} sort_item;

static int cmp_items(const void *pa, const void *pb)
{
    const sort_item *a = pa, *b = pb;
    if (a->rank != b->rank) return a->rank - b->rank;
    return a->key < b->key ? -1 : a->key > b->key;
}

vg_err_t vg_silences_list_json(vg_silences_t *s, vg_matcher_t *const *filter, size_t nfilter,
                               int64_t now_ms, vg_buf *out)
{
    vg_err_t rc = VG_OK;
    json_t *arr = json_array();
    pthread_mutex_lock(&s->mu);
    sort_item *it = vg_calloc(s->n + 1, sizeof *it);
    size_t n = 0;
    for (size_t i = 0; it && i < s->n; i++) {
        const vg_silence_t *x = &s->items[i];
        if (!filter_ok(x, filter, nfilter)) continue;
        int r = state_rank(vg_silence_state(x, now_ms));
        /* active by endsAt, pending by startsAt, expired by endsAt newest first */
        it[n++] = (sort_item){x, r, r == 0 ? x->ends_at : r == 1 ? x->starts_at : -x->ends_at};
    }
    if (it) qsort(it, n, sizeof *it, cmp_items);
    for (size_t i = 0; it && arr && i < n; i++)
        json_array_append_new(arr, vg_silence_to_json(it[i].x, now_ms));
    pthread_mutex_unlock(&s->mu);
    char *text = it && arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    rc = text ? vg_buf_puts(out, text) : VG_ENOMEM;
    free(text);
    vg_free(it);
    json_decref(arr);
    return rc;
}

vg_err_t vg_silences_get_json(vg_silences_t *s, const char *id, int64_t now_ms, vg_buf *out)
{
    pthread_mutex_lock(&s->mu);
    vg_silence_t *x = vg_silences_find_locked(s, id);
    json_t *o = x ? vg_silence_to_json(x, now_ms) : NULL;
    pthread_mutex_unlock(&s->mu);
    if (!x) return VG_ENOTFOUND;
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    vg_err_t rc = text ? vg_buf_puts(out, text) : VG_ENOMEM;
    free(text);
    json_decref(o);
    return rc;
}

static void json_error(vg_http_resp *resp, int status, const char *msg)
{
    resp->status = status;
    resp->content_type = "application/json";
    (void)vg_buf_json_str(&resp->body, msg, strlen(msg));
}

static void h_list(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    const char *fs[FILTERS_MAX];
    vg_matcher_t *ms[FILTERS_MAX];
    size_t nf = vg_http_req_args(req, "filter", fs, FILTERS_MAX), nm = 0;
    if (nf > FILTERS_MAX) nf = FILTERS_MAX;
    vg_error err = {0};
    for (; nm < nf; nm++) {
        if (vg_am_matcher_parse(fs[nm], &ms[nm], &err)) {
            json_error(resp, 400, err.msg);
            goto out;
        }
    }
    resp->content_type = "application/json";
    if (vg_silences_list_json(ud, ms, nm, vg_clock_wall_ms(), &resp->body))
        json_error(resp, 500, "out of memory");
out:
    for (size_t i = 0; i < nm; i++) vg_matcher_free(ms[i]);
}

static void h_post(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    size_t len = 0;
    const uint8_t *body = vg_http_req_body(req, &len);
    char id[37];
    vg_error err = {0};
    vg_err_t rc = vg_silences_set_json(ud, (const char *)body, len, vg_clock_wall_ms(), id, &err);
    if (rc) {
        json_error(resp,
                   rc == VG_ENOTFOUND                ? 404
                   : rc == VG_EIO || rc == VG_ENOMEM ? 500
                                                     : 400,
                   vg_error_msg(&err, rc));
        return;
    }
    resp->content_type = "application/json";
    (void)vg_buf_printf(&resp->body, "{\"silenceID\":\"%s\"}", id);
}

static const char *path_id(const vg_http_req *req)
{
    const char *p = vg_http_req_path(req), *slash = strrchr(p, '/');
    return slash ? slash + 1 : p;
}

static void h_get_one(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    resp->content_type = "application/json";
    vg_err_t rc = vg_silences_get_json(ud, path_id(req), vg_clock_wall_ms(), &resp->body);
    if (rc == VG_ENOTFOUND)
        resp->status = 404, vg_buf_reset(&resp->body);
    else if (rc)
        json_error(resp, 500, "out of memory");
}

static void h_delete(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    vg_error err = {0};
    vg_err_t rc = vg_silences_expire(ud, path_id(req), vg_clock_wall_ms(), &err);
    if (rc == VG_ENOTFOUND)
        resp->status = 404;
    else if (rc)
        json_error(resp, 500, vg_error_msg(&err, rc));
    else
        resp->content_type = "application/json";
}

static void h_status(void *ud, const vg_http_req *req, vg_http_resp *resp)
{
    char up[32];
    vg_timefmt_format_rfc3339(started_ms, up);
    resp->content_type = "application/json";
    (void)vg_buf_printf(&resp->body,
                        "{\"cluster\":{\"name\":\"vigil\",\"peers\":[],\"status\":\"ready\"},"
                        "\"config\":{\"original\":\"\"},\"uptime\":\"%s\","
                        "\"versionInfo\":{\"branch\":\"\",\"buildDate\":\"\",\"buildUser\":\"\","
                        "\"goVersion\":\"\",\"revision\":\"\",\"version\":\"" VIGIL_VERSION "\"}}",
                        up);
}

vg_err_t vg_silences_register(vg_silences_t *s, vg_httpd_t *h)
{
    started_ms = vg_clock_wall_ms();
    vg_err_t rc = vg_httpd_route(h, "GET", "/api/v2/silences", h_list, s);
    if (!rc) rc = vg_httpd_route(h, "POST", "/api/v2/silences", h_post, s);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v2/silence/*", h_get_one, s);
    if (!rc) rc = vg_httpd_route(h, "DELETE", "/api/v2/silence/*", h_delete, s);
    if (!rc) rc = vg_httpd_route(h, "GET", "/api/v2/status", h_status, s);
    return rc;
}
