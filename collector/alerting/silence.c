/*
 * silence.c - Alertmanager silences: the store, its rules and its file.
 *
 * A silence is matchers plus [startsAt, endsAt); its state follows from the
 * clock, so nothing needs a timer. Create/update/expire follow
 * Alertmanager's silences.Set and expire: an update that would change what
 * the silence already did (other matchers, a new start for an active one)
 * expires the old silence and creates a new one with a new UUID, so the
 * history of what was muted stays true. Every change rewrites
 * <dir>/silences (a JSON array in the API's own shape, written to a temp
 * file, fsynced and renamed) before the caller is answered, so an
 * acknowledged silence survives a crash. Expired silences are kept for
 * Alertmanager's default retention (120h) so `amtool silence query
 * --expired` still shows them, then dropped. One mutex guards the array;
 * the mute check is a scan, silences are few.
 */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "alerting/alerts_api.h"
#include "alerting/silence.h"
#include "alerting/silence_int.h"
#include "vigil/alloc.h"
#include "vigil/spool.h"
#include "vigil/timefmt.h"

#define RETENTION_MS (120LL * 3600 * 1000)
#define SILENCES_MAX 100000
#define FILE_MAX     (256u << 20)

void vg_silence_clear(vg_silence_t *x)
{
    for (size_t i = 0; i < x->nms; i++) vg_matcher_free(x->ms[i]);
    vg_free(x->ms);
    vg_free(x->created_by);
    vg_free(x->comment);
    memset(x, 0, sizeof *x);
}

const char *vg_silence_state(const vg_silence_t *x, int64_t now)
{
    if (now < x->starts_at) return "pending";
    if (now < x->ends_at) return "active";
    return "expired";
}

void vg_silences_free(vg_silences_t *s)
{
    if (!s) return;
    for (size_t i = 0; i < s->n; i++) vg_silence_clear(&s->items[i]);
    vg_free(s->items);
    vg_free(s->dir);
    pthread_mutex_destroy(&s->mu);
    vg_free(s);
}

/* ---- time and ids ---- */

static int new_uuid(char out[37])
{
    unsigned char b[16];
    if (getrandom(b, sizeof b, 0) != (ssize_t)sizeof b) return -1;
    b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
    b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
    snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0],
             b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13],
             b[14], b[15]);
    return 0;
}

/* ---- JSON in and out ---- */

static vg_err_t matcher_from_json(json_t *j, vg_matcher_t **out, vg_error *err)
{
    json_t *name = json_object_get(j, "name"), *value = json_object_get(j, "value");
    json_t *isre = json_object_get(j, "isRegex"), *iseq = json_object_get(j, "isEqual");
    if (!json_is_string(name) || !json_is_string(value) || !json_is_boolean(isre) ||
        (iseq && !json_is_boolean(iseq)))
        return vg_error_set(err, VG_EINVAL,
                            "a matcher needs name and value strings and an isRegex boolean");
    const char *n = json_string_value(name);
    if (!vg_label_name_valid(n, strlen(n)))
        return vg_error_set(err, VG_EINVAL, "invalid label name \"%.100s\"", n);
    int eq = !iseq || json_is_true(iseq), re = json_is_true(isre);
    vg_match_op op = re ? (eq ? VG_MATCH_RE : VG_MATCH_NRE) : (eq ? VG_MATCH_EQ : VG_MATCH_NEQ);
    return vg_matcher_new(op, n, json_string_value(value), out, err);
}

static vg_err_t time_field(json_t *o, const char *key, int64_t *ms, vg_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v) || vg_alerts_api_parse_time(json_string_value(v), ms))
        return vg_error_set(err, VG_EINVAL, "%s must be an RFC 3339 time", key);
    return VG_OK;
}

static vg_err_t str_field(json_t *o, const char *key, char **out, vg_error *err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_string(v)) return vg_error_set(err, VG_EINVAL, "%s must be a string", key);
    if (!(*out = vg_strdup(json_string_value(v))))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    return VG_OK;
}

/* Decode a silence object (PostableSilence, or the stored form with updatedAt). */
vg_err_t vg_silence_from_json(json_t *o, vg_silence_t *x, vg_error *err)
{
    memset(x, 0, sizeof *x);
    json_t *ms = json_object_get(o, "matchers"), *id = json_object_get(o, "id");
    vg_err_t rc = VG_OK;
    if (!json_is_object(o)) return vg_error_set(err, VG_EINVAL, "a silence must be a JSON object");
    if (!json_is_array(ms) || json_array_size(ms) == 0)
        return vg_error_set(err, VG_EINVAL, "at least one matcher required");
    if (id && !json_is_null(id)) {
        if (!json_is_string(id) || strlen(json_string_value(id)) > 36)
            return vg_error_set(err, VG_EINVAL, "id must be a silence id string");
        strcpy(x->id, json_string_value(id));
    }
    if (!(x->ms = vg_calloc(json_array_size(ms), sizeof *x->ms)))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < json_array_size(ms) && !rc; i++) {
        rc = matcher_from_json(json_array_get(ms, i), &x->ms[i], err);
        if (!rc) x->nms++;
    }
    if (!rc) rc = time_field(o, "startsAt", &x->starts_at, err);
    if (!rc) rc = time_field(o, "endsAt", &x->ends_at, err);
    if (!rc) rc = str_field(o, "createdBy", &x->created_by, err);
    if (!rc) rc = str_field(o, "comment", &x->comment, err);
    if (!rc && json_object_get(o, "updatedAt"))
        rc = time_field(o, "updatedAt", &x->updated_at, err);
    if (rc) vg_silence_clear(x);
    return rc;
}

static json_t *matcher_json(const vg_matcher_t *m)
{
    vg_match_op op = vg_matcher_op(m);
    return json_pack("{s:s,s:s,s:b,s:b}", "name", vg_matcher_name(m), "value", vg_matcher_value(m),
                     "isRegex", op == VG_MATCH_RE || op == VG_MATCH_NRE, "isEqual",
                     op == VG_MATCH_EQ || op == VG_MATCH_RE);
}

/* GettableSilence (with status when now >= 0; the file form leaves it out). */
json_t *vg_silence_to_json(const vg_silence_t *x, int64_t now)
{
    char st[32], en[32], up[32];
    vg_timefmt_format_rfc3339(x->starts_at, st);
    vg_timefmt_format_rfc3339(x->ends_at, en);
    vg_timefmt_format_rfc3339(x->updated_at, up);
    json_t *ms = json_array();
    for (size_t i = 0; ms && i < x->nms; i++) json_array_append_new(ms, matcher_json(x->ms[i]));
    json_t *o =
        json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:s}", "id", x->id, "matchers", ms, "startsAt", st,
                  "endsAt", en, "updatedAt", up, "createdBy", x->created_by, "comment", x->comment);
    if (o && now >= 0)
        json_object_set_new(o, "status", json_pack("{s:s}", "state", vg_silence_state(x, now)));
    return o;
}

/* ---- persistence ---- */

static vg_err_t persist_locked(vg_silences_t *s, vg_error *err)
{
    if (!s->dir) return VG_OK;
    json_t *arr = json_array();
    for (size_t i = 0; arr && i < s->n; i++)
        json_array_append_new(arr, vg_silence_to_json(&s->items[i], -1));
    char *text = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    json_decref(arr);
    if (!text) return vg_error_set(err, VG_ENOMEM, "out of memory writing silences");
    char path[4096];
    snprintf(path, sizeof path, "%s/silences", s->dir);
    vg_err_t rc = vg_spool_write_file(path, text, strlen(text), 1, err);
    free(text);
    if (!rc) { /* make the rename itself durable */
        int dfd = open(s->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) (void)fsync(dfd), close(dfd);
    }
    if (rc) vg_metric_inc(s->persist_errors);
    return rc;
}

static vg_err_t load(vg_silences_t *s, vg_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/silences", s->dir);
    json_error_t je;
    FILE *f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT) return VG_OK;
        return vg_error_set(err, VG_EIO, "cannot open %s: %s", path, strerror(errno));
    }
    json_t *arr = json_loadf(f, JSON_REJECT_DUPLICATES, &je);
    fclose(f);
    vg_err_t rc = VG_OK;
    if (!json_is_array(arr) || json_array_size(arr) > SILENCES_MAX) {
        rc = vg_error_set(err, VG_ECORRUPT,
                          "silences file %s is corrupt (%s at line %d); move it away to start "
                          "without silences",
                          path, arr ? "not a JSON array" : je.text, je.line);
        goto out;
    }
    if (json_array_size(arr) && !(s->items = vg_calloc(json_array_size(arr), sizeof *s->items))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory loading silences");
        goto out;
    }
    s->cap = json_array_size(arr);
    for (size_t i = 0; i < json_array_size(arr) && !rc; i++) {
        vg_error e2 = {0};
        vg_silence_t *x = &s->items[s->n];
        if (vg_silence_from_json(json_array_get(arr, i), x, &e2) || !x->id[0]) {
            vg_silence_clear(x); /* decoded but without an id: not kept */
            rc = vg_error_set(err, VG_ECORRUPT,
                              "silences file %s is corrupt: entry %zu: %s; move it away to start "
                              "without silences",
                              path, i, e2.msg[0] ? e2.msg : "no id");
        } else {
            s->n++;
        }
    }
out:
    json_decref(arr);
    return rc;
}

vg_err_t vg_silences_open(const char *dir, vg_metrics_t *m, vg_silences_t **out, vg_error *err)
{
    *out = NULL;
    vg_silences_t *s = vg_calloc(1, sizeof *s);
    if (!s) return vg_error_set(err, VG_ENOMEM, "out of memory");
    pthread_mutex_init(&s->mu, NULL);
    s->persist_errors =
        vg_metrics_counter(m, "vigil_silences_persist_failures_total",
                           "Silence changes that could not be written to disk.", NULL);
    vg_err_t rc = VG_OK;
    if (dir && !(s->dir = vg_strdup(dir))) rc = vg_error_set(err, VG_ENOMEM, "out of memory");
    if (!rc && dir) rc = vg_spool_mkdirs(dir, err);
    if (!rc && dir) rc = load(s, err);
    if (rc) {
        vg_silences_free(s);
        return rc;
    }
    *out = s;
    return VG_OK;
}

/* ---- the store ---- */

static void gc_locked(vg_silences_t *s, int64_t now)
{
    size_t w = 0;
    for (size_t i = 0; i < s->n; i++) {
        if (s->items[i].ends_at + RETENTION_MS < now)
            vg_silence_clear(&s->items[i]);
        else
            s->items[w++] = s->items[i];
    }
    s->n = w;
}

vg_silence_t *vg_silences_find_locked(vg_silences_t *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (!strcmp(s->items[i].id, id)) return &s->items[i];
    return NULL;
}

static int same_matchers(const vg_silence_t *a, const vg_silence_t *b)
{
    if (a->nms != b->nms) return 0;
    for (size_t i = 0; i < a->nms; i++)
        if (vg_matcher_op(a->ms[i]) != vg_matcher_op(b->ms[i]) ||
            strcmp(vg_matcher_name(a->ms[i]), vg_matcher_name(b->ms[i])) ||
            strcmp(vg_matcher_value(a->ms[i]), vg_matcher_value(b->ms[i])))
            return 0;
    return 1;
}

/* Alertmanager's canUpdate. */
static int can_update(const vg_silence_t *a, const vg_silence_t *b, int64_t now)
{
    if (!same_matchers(a, b)) return 0;
    const char *st = vg_silence_state(a, now);
    if (!strcmp(st, "active")) return b->starts_at == a->starts_at && b->ends_at >= now;
    if (!strcmp(st, "pending")) return b->starts_at >= now;
    return 0;
}

static vg_err_t validate(const vg_silence_t *x, vg_error *err)
{
    int all_empty = 1;
    for (size_t i = 0; i < x->nms; i++) all_empty &= vg_matcher_matches_empty(x->ms[i]);
    if (all_empty)
        return vg_error_set(err, VG_EINVAL, "at least one matcher must not match the empty string");
    if (x->ends_at < x->starts_at)
        return vg_error_set(err, VG_EINVAL, "end time must not be before start time");
    return VG_OK;
}

static vg_err_t insert_locked(vg_silences_t *s, vg_silence_t *x, vg_error *err)
{
    if (s->n >= SILENCES_MAX) return vg_error_set(err, VG_ELIMIT, "too many silences");
    if (s->n == s->cap) {
        size_t nc = s->cap ? s->cap * 2 : 16;
        vg_silence_t *ni = vg_realloc(s->items, nc * sizeof *ni);
        if (!ni) return vg_error_set(err, VG_ENOMEM, "out of memory");
        s->items = ni;
        s->cap = nc;
    }
    s->items[s->n++] = *x;
    memset(x, 0, sizeof *x);
    return VG_OK;
}

static vg_err_t expire_locked(vg_silence_t *x, int64_t now, vg_error *err)
{
    const char *st = vg_silence_state(x, now);
    if (!strcmp(st, "expired"))
        return vg_error_set(err, VG_EINVAL, "silence %s already expired", x->id);
    if (!strcmp(st, "pending")) x->starts_at = now;
    x->ends_at = now;
    x->updated_at = now;
    return VG_OK;
}

/* Silences.Set on a decoded silence; takes x's contents either way. */
static vg_err_t set_locked(vg_silences_t *s, vg_silence_t *x, int64_t now, char id[37],
                           vg_error *err)
{
    vg_silence_t *prev = x->id[0] ? vg_silences_find_locked(s, x->id) : NULL;
    if (x->id[0] && !prev) return vg_error_set(err, VG_ENOTFOUND, "silence %s not found", x->id);
    x->updated_at = now;
    if (prev && can_update(prev, x, now)) {
        vg_silence_clear(prev);
        *prev = *x;
        memset(x, 0, sizeof *x);
        strcpy(id, prev->id);
        return VG_OK;
    }
    if (prev && strcmp(vg_silence_state(prev, now), "expired"))
        (void)expire_locked(prev, now, NULL);
    if (new_uuid(x->id)) return vg_error_set(err, VG_EIO, "cannot get random bytes for an id");
    if (x->starts_at < now) x->starts_at = now;
    strcpy(id, x->id);
    return insert_locked(s, x, err);
}

vg_err_t vg_silences_set_json(vg_silences_t *s, const char *json, size_t len, int64_t now_ms,
                              char id[37], vg_error *err)
{
    json_error_t je;
    vg_silence_t x;
    id[0] = '\0';
    json_t *o = json_loadb(json, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) return vg_error_set(err, VG_EINVAL, "bad JSON: %s", je.text);
    json_t *up = json_object_get(o, "updatedAt");
    if (up) json_object_del(o, "updatedAt"); /* the server sets it */
    vg_err_t rc = vg_silence_from_json(o, &x, err);
    json_decref(o);
    if (rc) return rc;
    if ((rc = validate(&x, err))) goto out;
    if (x.starts_at >= x.ends_at) {
        rc = vg_error_set(err, VG_EINVAL,
                          "Failed to create silence: start time must be before end time");
        goto out;
    }
    if (x.ends_at < now_ms) {
        rc =
            vg_error_set(err, VG_EINVAL, "Failed to create silence: end time can't be in the past");
        goto out;
    }
    pthread_mutex_lock(&s->mu);
    gc_locked(s, now_ms);
    rc = set_locked(s, &x, now_ms, id, err);
    if (!rc) rc = persist_locked(s, err);
    pthread_mutex_unlock(&s->mu);
out:
    vg_silence_clear(&x);
    return rc;
}

vg_err_t vg_silences_expire(vg_silences_t *s, const char *id, int64_t now_ms, vg_error *err)
{
    pthread_mutex_lock(&s->mu);
    vg_silence_t *x = vg_silences_find_locked(s, id);
    vg_err_t rc = x ? expire_locked(x, now_ms, err)
                    : vg_error_set(err, VG_ENOTFOUND, "silence %.40s not found", id);
    if (!rc) rc = persist_locked(s, err);
    pthread_mutex_unlock(&s->mu);
    return rc;
}

size_t vg_silences_mutes(vg_silences_t *s, const vg_label_t *l, size_t n, int64_t now_ms,
                         char (*ids)[37], size_t max)
{
    size_t cnt = 0;
    if (!s) return 0;
    pthread_mutex_lock(&s->mu);
    for (size_t i = 0; i < s->n; i++) {
        const vg_silence_t *x = &s->items[i];
        if (strcmp(vg_silence_state(x, now_ms), "active")) continue;
        size_t k = 0;
        while (k < x->nms &&
               vg_matcher_matches(x->ms[k], vg_labels_get(l, n, vg_matcher_name(x->ms[k]))))
            k++;
        if (k < x->nms) continue;
        if (ids && cnt < max) strcpy(ids[cnt], x->id);
        cnt++;
    }
    pthread_mutex_unlock(&s->mu);
    return cnt;
}
