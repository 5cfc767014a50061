/*
 * target.c - what a scrape target is: its labels, its URL, its phase.
 *
 * Target labels are built the way Prometheus's PopulateLabels builds them,
 * so a pasted relabel_configs sees exactly the labels it expects:
 *   1. the group's labels (static_configs or a file_sd group, which carries
 *      __meta_filepath) and __address__ = the target;
 *   2. job, __scrape_interval__, __scrape_timeout__, __metrics_path__ and
 *      __scheme__ unless the group set them, and __param_<name> = the first
 *      value of each configured URL parameter;
 *   3. relabel_configs; a dropped target is not an error, just absent;
 *   4. a default port from the scheme, address, interval and timeout checks;
 *   5. instance defaults to __address__, and every label starting with "__"
 *      is dropped from the set that goes on the series.
 * The URL is derived from the relabeled labels, never from the config, so
 * relabeling __address__, __scheme__, __metrics_path__ or __param_x
 * changes what is scraped. Relabeling runs in a scratch arena; the kept
 * strings are copied into the target's own arena.
 *
 * Identity: a target is keyed by XXH3 over its URL, final labels, interval
 * and timeout (Prometheus hashes labels and URL). When file_sd changes, a
 * target whose key is unchanged keeps running with its series cache, so
 * its staleness tracking is not reset.
 *
 * The phase spreads scrapes over the interval: XXH3 of job and URL modulo
 * the interval gives a stable offset, so restarts keep the same cadence and
 * many targets do not all fire at once.
 */
#include <stdio.h>
#include <string.h>
#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "scrape/metadata.h"
#include "scrape/scrape_int.h"
#include "vigil/alloc.h"
#include "vigil/duration.h"

#define DEFAULT_INTERVAL_MS 30000
#define DEFAULT_TIMEOUT_MS  10000
#define PARAM_PREFIX        "__param_"

static const char *find_label(const vg_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* Set name=value in l[0..*n) (replacing), or add it; no-op for "". */
static void put(vg_label_t *l, size_t *n, const char *name, const char *value, int replace)
{
    if (!value || !*value) return;
    for (size_t i = 0; i < *n; i++)
        if (!strcmp(l[i].name, name)) {
            if (replace) l[i].value = value;
            return;
        }
    l[(*n)++] = (vg_label_t){name, value};
}

/* Steps 1 and 2: the labels relabel_configs sees, sorted, in a. */
static vg_label_t *pre_relabel(const vg_scrape_target_t *t, const vg_static_group_t *g,
                               const char *addr, vg_arena_t *a, size_t *n, size_t *cap)
{
    const vg_scrape_config_t *sc = t->sc;
    size_t ng = g ? g->nlabels : 0, k = 0;
    char iv[VG_DURATION_STRMAX], to[VG_DURATION_STRMAX];
    vg_label_t *l = vg_arena_alloc(a, (ng + sc->nparams + 8) * sizeof *l);
    if (!l) return NULL;
    for (size_t i = 0; i < ng; i++) put(l, &k, g->labels[i].name, g->labels[i].value, 1);
    put(l, &k, "__address__", addr, 1);
    const char *siv = vg_arena_strdup(a, vg_duration_format(t->interval_ms, iv, sizeof iv));
    const char *sto = vg_arena_strdup(a, vg_duration_format(t->timeout_ms, to, sizeof to));
    if (!siv || !sto) return NULL;
    put(l, &k, "job", sc->job_name, 0);
    put(l, &k, "__scrape_interval__", siv, 0);
    put(l, &k, "__scrape_timeout__", sto, 0);
    put(l, &k, "__metrics_path__", sc->metrics_path ? sc->metrics_path : "/metrics", 0);
    put(l, &k, "__scheme__", sc->scheme ? sc->scheme : "http", 0);
    for (size_t i = 0; i < sc->nparams; i++) {
        const char *name = vg_arena_sprintf(a, PARAM_PREFIX "%s", sc->params[i].key);
        if (!name) return NULL;
        if (!find_label(l, k, name)) put(l, &k, name, sc->params[i].value, 1); /* first value */
    }
    vg_labels_sort(l, k);
    *cap = vg_relabel_cap(sc->relabel, k);
    vg_label_t *big = *cap > k ? vg_arena_alloc(a, *cap * sizeof *big) : l;
    if (big && big != l) memcpy(big, l, k * sizeof *l);
    *n = k;
    return big;
}

/* host:port without a port gets the scheme's default (Prometheus's addPort). */
static const char *add_port(const char *addr, const char *scheme, vg_arena_t *a, vg_error *err)
{
    const char *colon = strrchr(addr, ':'), *rb = strrchr(addr, ']');
    int bracketed = addr[0] == '[';
    int has_port = bracketed ? (rb && rb[1] == ':') : colon != NULL;
    if (has_port || (!bracketed && colon && colon != strchr(addr, ':'))) return addr;
    if (strcmp(scheme, "http") && strcmp(scheme, "https")) {
        vg_error_set(err, VG_EINVAL, "invalid scheme: \"%.50s\"", scheme);
        return NULL;
    }
    return vg_arena_sprintf(a, "%s:%s", addr, strcmp(scheme, "https") ? "80" : "443");
}

static int addr_valid(const char *a)
{
    if (!a || !*a || strchr(a, '/') || strchr(a, '@') || strchr(a, '?') || strchr(a, '#')) return 0;
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p <= ' ') return 0;
    return 1;
}

static vg_err_t parse_times(vg_scrape_target_t *t, const vg_label_t *l, size_t n, vg_error *err)
{
    const char *iv = find_label(l, n, "__scrape_interval__");
    const char *to = find_label(l, n, "__scrape_timeout__");
    vg_error e = {0};
    if (vg_duration_parse(iv ? iv : "", &t->interval_ms, &e))
        return vg_error_set(err, VG_EINVAL, "error parsing scrape interval: %s", e.msg);
    if (!t->interval_ms) return vg_error_set(err, VG_EINVAL, "scrape interval cannot be 0");
    if (vg_duration_parse(to ? to : "", &t->timeout_ms, &e))
        return vg_error_set(err, VG_EINVAL, "error parsing scrape timeout: %s", e.msg);
    if (!t->timeout_ms) return vg_error_set(err, VG_EINVAL, "scrape timeout cannot be 0");
    if (t->timeout_ms > t->interval_ms)
        return vg_error_set(err, VG_EINVAL,
                            "scrape timeout cannot be greater than scrape interval (\"%s\" > "
                            "\"%s\")",
                            to, iv);
    return VG_OK;
}

static int cmp_kv(const void *a, const void *b)
{
    return strcmp(((const vg_kv_t *)a)->key, ((const vg_kv_t *)b)->key);
}

/* ?k=v&... from the configured params with __param_<k> overriding the first
 * value of k, sorted by key like Go's url.Values.Encode. */
static vg_err_t append_params(vg_buf *u, const vg_scrape_config_t *sc, const vg_label_t *l,
                              size_t n, vg_arena_t *a)
{
    size_t np = 0, plen = strlen(PARAM_PREFIX);
    vg_kv_t *p = vg_arena_alloc(a, (sc->nparams + n + 1) * sizeof *p);
    if (!p) return VG_ENOMEM;
    for (size_t i = 0; i < sc->nparams; i++) p[np++] = sc->params[i];
    for (size_t i = 0; i < n; i++) {
        if (strncmp(l[i].name, PARAM_PREFIX, plen)) continue;
        size_t j = 0;
        while (j < np && strcmp(p[j].key, l[i].name + plen)) j++;
        if (j == np) np++;
        p[j] = (vg_kv_t){l[i].name + plen, l[i].value};
    }
    for (size_t i = 1; i < np; i++) /* stable: repeated keys keep their order */
        for (size_t j = i; j > 0 && cmp_kv(&p[j - 1], &p[j]) > 0; j--) {
            vg_kv_t tmp = p[j];
            p[j] = p[j - 1];
            p[j - 1] = tmp;
        }
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < np && !rc; i++) {
        char *k = curl_easy_escape(NULL, p[i].key, 0);
        char *v = curl_easy_escape(NULL, p[i].value ? p[i].value : "", 0);
        rc = k && v ? vg_buf_printf(u, "%c%s=%s", i ? '&' : '?', k, v) : VG_ENOMEM;
        curl_free(k);
        curl_free(v);
    }
    return rc;
}

static vg_err_t build_url(vg_scrape_target_t *t, const vg_label_t *l, size_t n, const char *addr,
                          vg_arena_t *a)
{
    const char *scheme = find_label(l, n, "__scheme__");
    const char *path = find_label(l, n, "__metrics_path__");
    if (!scheme) scheme = "http";
    if (!path) path = "/metrics";
    vg_buf u;
    vg_buf_init(&u, 64 * 1024);
    vg_err_t rc = vg_buf_printf(&u, "%s://%s%s%s", scheme, addr, path[0] == '/' ? "" : "/", path);
    if (!rc) rc = append_params(&u, t->sc, l, n, a);
    if (!rc && !(t->url = vg_arena_strndup(t->arena, u.data, u.len))) rc = VG_ENOMEM;
    if (!rc && !(t->scheme = vg_arena_strdup(t->arena, scheme))) rc = VG_ENOMEM;
    if (!rc && !(t->address = vg_arena_strdup(t->arena, addr))) rc = VG_ENOMEM;
    vg_buf_free(&u);
    return rc;
}

/* Step 5: labels without "__", instance defaulted, copied into t->arena. */
static vg_err_t final_labels(vg_scrape_target_t *t, const vg_label_t *l, size_t n, const char *addr)
{
    t->labels = vg_arena_alloc(t->arena, (n + 1) * sizeof *t->labels);
    if (!t->labels) return VG_ENOMEM;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        if (!strncmp(l[i].name, "__", 2)) continue;
        t->labels[k].name = vg_arena_strdup(t->arena, l[i].name);
        t->labels[k].value = vg_arena_strdup(t->arena, l[i].value);
        if (!t->labels[k].name || !t->labels[k].value) return VG_ENOMEM;
        k++;
    }
    if (!find_label(t->labels, k, "instance")) {
        const char *v = vg_arena_strdup(t->arena, addr);
        if (!v) return VG_ENOMEM;
        t->labels[k++] = (vg_label_t){"instance", v};
    }
    t->nlabels = k;
    vg_labels_sort(t->labels, k);
    t->instance = find_label(t->labels, k, "instance");
    t->slabels = vg_arena_alloc(t->arena, (k ? k : 1) * sizeof *t->slabels);
    if (!t->slabels) return VG_ENOMEM;
    for (size_t i = 0; i < k; i++)
        t->slabels[i] = (vg_scrape_label){t->labels[i].name, t->labels[i].value,
                                          strlen(t->labels[i].name), strlen(t->labels[i].value)};
    return VG_OK;
}

/* XXH3 of "job\xffurl": stable across restarts and agents. */
static uint64_t phase_hash(const char *job, const char *url)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, job, strlen(job));
    XXH3_64bits_update(&st, "\xff", 1);
    XXH3_64bits_update(&st, url, strlen(url));
    return XXH3_64bits_digest(&st);
}

static uint64_t identity(const vg_scrape_target_t *t)
{
    XXH3_state_t st;
    XXH3_64bits_reset(&st);
    XXH3_64bits_update(&st, t->url, strlen(t->url) + 1);
    for (size_t i = 0; i < t->nlabels; i++) {
        XXH3_64bits_update(&st, t->labels[i].name, strlen(t->labels[i].name) + 1);
        XXH3_64bits_update(&st, t->labels[i].value, strlen(t->labels[i].value) + 1);
    }
    int64_t iv[2] = {t->interval_ms, t->timeout_ms};
    XXH3_64bits_update(&st, iv, sizeof iv);
    return XXH3_64bits_digest(&st);
}

static void job_defaults(vg_scrape_target_t *t, const vg_agent_config_t *cfg,
                         const vg_scrape_config_t *sc)
{
    t->interval_ms = sc->interval_ms > 0                  ? sc->interval_ms
                     : cfg && cfg->scrape_interval_ms > 0 ? cfg->scrape_interval_ms
                                                          : DEFAULT_INTERVAL_MS;
    t->timeout_ms = sc->timeout_ms > 0                  ? sc->timeout_ms
                    : cfg && cfg->scrape_timeout_ms > 0 ? cfg->scrape_timeout_ms
                                                        : DEFAULT_TIMEOUT_MS;
    if (t->timeout_ms > t->interval_ms) t->timeout_ms = t->interval_ms;
}

/* Steps 3-5 on the pre-relabel set l (room for cap). */
static vg_err_t relabel_and_build(vg_scrape_target_t *t, vg_label_t *l, size_t n, size_t cap,
                                  vg_arena_t *a, vg_error *err)
{
    vg_relabel_result rr = vg_relabel_apply(t->sc->relabel, l, &n, cap, a);
    if (rr == VG_RELABEL_ERROR) return vg_error_set(err, VG_ENOMEM, "relabeling: out of memory");
    if (rr == VG_RELABEL_DROP) {
        t->dropped = 1;
        return VG_OK;
    }
    const char *addr = find_label(l, n, "__address__"), *scheme = find_label(l, n, "__scheme__");
    if (!addr) return vg_error_set(err, VG_EINVAL, "no address");
    if (!(addr = add_port(addr, scheme ? scheme : "http", a, err)))
        return err && err->code ? err->code : VG_ENOMEM;
    if (!addr_valid(addr))
        return vg_error_set(err, VG_EINVAL, "\"%.200s\" is not a valid host:port", addr);
    vg_err_t rc = parse_times(t, l, n, err);
    if (rc) return rc;
    if ((rc = final_labels(t, l, n, addr)) || (rc = build_url(t, l, n, addr, a)))
        return vg_error_set(err, rc, "out of memory");
    return VG_OK;
}

vg_err_t vg_scrape_target_init(vg_scrape_target_t *t, const vg_agent_config_t *cfg,
                               const vg_scrape_config_t *sc, const vg_static_group_t *g,
                               const char *addr, vg_error *err)
{
    const char *job = sc->job_name ? sc->job_name : "";
    vg_error e = {0};
    t->sc = sc;
    atomic_store(&t->health, -1);
    vg_buf_init(&t->body, 0);
    job_defaults(t, cfg, sc);
    vg_arena_t *scratch = vg_arena_new(4096);
    t->arena = vg_arena_new(1024);
    size_t n = 0, cap = 0;
    vg_label_t *l = scratch && t->arena ? pre_relabel(t, g, addr, scratch, &n, &cap) : NULL;
    vg_err_t rc = l ? relabel_and_build(t, l, n, cap, scratch, &e) : VG_ENOMEM;
    vg_arena_free(scratch);
    if (rc)
        return vg_error_set(err, rc == VG_EINVAL ? VG_ECONFIG : rc, "job %s target %s: %s", job,
                            addr ? addr : "", vg_error_msg(&e, rc));
    if (t->dropped) return VG_OK;
    t->body_cap = sc->body_size_limit && sc->body_size_limit < VG_SCRAPE_DEFAULT_BODY_CAP
                      ? (size_t)sc->body_size_limit
                      : VG_SCRAPE_DEFAULT_BODY_CAP;
    t->body.max = t->body_cap;
    t->offset_ms = phase_hash(job, t->url) % (uint64_t)t->interval_ms;
    t->key = identity(t);
    return VG_OK;
}

void vg_scrape_target_destroy(vg_scrape_target_t *t)
{
    if (!t) return;
    vg_scrape_series_reset(&t->series);
    vg_scrape_meta_free(t->meta);
    t->meta = NULL;
    vg_buf_free(&t->body);
    vg_arena_free(t->arena);
    t->arena = NULL;
}

int64_t vg_scrape_target_first_delay(const vg_scrape_target_t *t, int64_t now_ms)
{
    int64_t iv = t->interval_ms, pos = now_ms % iv;
    if (pos < 0) pos += iv;
    return ((int64_t)t->offset_ms - pos + iv) % iv;
}

/* ---- label merging ---- */

static long index_of(const vg_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return (long)i;
    return -1;
}

/* honor_labels=false: a scraped label that clashes with a target label is
 * kept as exported_<name> (more prefixes until free), shortest names first,
 * exactly as Prometheus resolves conflicting exposed labels. */
static size_t resolve_conflicts(vg_label_t *out, size_t n, vg_label_t *conf, size_t nc,
                                vg_arena_t *a)
{
    for (size_t i = 1; i < nc; i++) /* stable insertion sort by name length */
        for (size_t j = i; j > 0 && strlen(conf[j].name) < strlen(conf[j - 1].name); j--) {
            vg_label_t tmp = conf[j];
            conf[j] = conf[j - 1];
            conf[j - 1] = tmp;
        }
    for (size_t i = 0; i < nc; i++) {
        const char *name = conf[i].name;
        do {
            name = vg_arena_sprintf(a, "exported_%s", name);
            if (!name) return 0;
        } while (index_of(out, n, name) >= 0);
        out[n++] = (vg_label_t){name, conf[i].value};
    }
    return n;
}

size_t vg_scrape_merge_labels(const vg_scrape_target_t *t, int honor, const char *metric,
                              const vg_label_t *sl, size_t ns, vg_arena_t *a, vg_label_t *out)
{
    size_t n = 0, nc = 0;
    out[n++] = (vg_label_t){VG_METRIC_NAME, metric};
    for (size_t i = 0; i < ns; i++)
        if (sl[i].value[0]) out[n++] = sl[i];
    vg_label_t *conf = t->nlabels ? vg_arena_alloc(a, t->nlabels * sizeof *conf) : NULL;
    if (t->nlabels && !conf) return 0;
    for (size_t i = 0; i < t->nlabels; i++) {
        const vg_label_t *tl = &t->labels[i];
        long at = index_of(out, n, tl->name);
        if (at < 0) {
            out[n++] = *tl;
        } else if (!honor) {
            conf[nc++] = out[at];
            out[at].value = tl->value;
        }
    }
    if (nc) n = resolve_conflicts(out, n, conf, nc, a);
    if (n) vg_labels_sort(out, n);
    return n;
}

size_t vg_scrape_report_labels(const vg_scrape_target_t *t, const char *name, vg_label_t *out)
{
    out[0] = (vg_label_t){VG_METRIC_NAME, name};
    memcpy(out + 1, t->labels, t->nlabels * sizeof *out);
    vg_labels_sort(out, t->nlabels + 1);
    return t->nlabels + 1;
}

/* ---- the scrape path's merge: lengths carried, no qsort ---- */

static int name_cmp(const vg_scrape_label *a, const vg_scrape_label *b)
{
    if (a->nlen && b->nlen && a->name[0] != b->name[0]) /* usually decides */
        return (unsigned char)a->name[0] - (unsigned char)b->name[0];
    size_t m = a->nlen < b->nlen ? a->nlen : b->nlen;
    int c = memcmp(a->name, b->name, m);
    return c ? c : (a->nlen > b->nlen) - (a->nlen < b->nlen);
}

void vg_scrape_labels_sort(vg_scrape_label *l, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        vg_scrape_label x = l[i];
        size_t j = i;
        for (; j > 0 && name_cmp(&l[j - 1], &x) > 0; j--) l[j] = l[j - 1];
        l[j] = x;
    }
}

/* honor_labels=false with a clash: the rare path, through the general merge
 * (on C strings: the parser may have lent them unterminated). */
static size_t merge_conflict(const vg_scrape_target_t *t, const vg_expfmt_entry *e, vg_arena_t *a,
                             vg_scrape_label *out)
{
    vg_label_t *in = vg_arena_alloc(a, (1 + e->nlabels + 2 * t->nlabels) * sizeof *in);
    vg_label_t *sl = vg_arena_alloc(a, (e->nlabels + 1) * sizeof *sl);
    const char *name = vg_arena_strndup(a, e->name, e->name_len);
    if (!in || !sl || !name) return 0;
    for (size_t i = 0; i < e->nlabels; i++) {
        sl[i].name = vg_arena_strndup(a, e->labels[i].name, e->label_lens[i].name);
        sl[i].value = vg_arena_strndup(a, e->labels[i].value, e->label_lens[i].value);
        if (!sl[i].name || !sl[i].value) return 0;
    }
    size_t n = vg_scrape_merge_labels(t, 0, name, sl, e->nlabels, a, in);
    for (size_t i = 0; i < n; i++)
        out[i] =
            (vg_scrape_label){in[i].name, in[i].value, strlen(in[i].name), strlen(in[i].value)};
    return n;
}

size_t vg_scrape_merge(const vg_scrape_target_t *t, int honor, const vg_expfmt_entry *e,
                       vg_arena_t *a, vg_scrape_label *tmp, vg_scrape_label *out)
{
    size_t ns = 0, n = 0, i = 0, j = 0;
    tmp[ns++] = (vg_scrape_label){VG_METRIC_NAME, e->name, sizeof VG_METRIC_NAME - 1, e->name_len};
    for (size_t k = 0; k < e->nlabels; k++)
        if (e->label_lens[k].value)
            tmp[ns++] = (vg_scrape_label){e->labels[k].name, e->labels[k].value,
                                          e->label_lens[k].name, e->label_lens[k].value};
    vg_scrape_labels_sort(tmp, ns);
    const vg_scrape_label *tl = t->slabels;
    while (i < ns || j < t->nlabels) {
        int c = i == ns ? 1 : j == t->nlabels ? -1 : name_cmp(&tmp[i], &tl[j]);
        if (c == 0 && !honor) return merge_conflict(t, e, a, out);
        if (c <= 0) {
            out[n++] = tmp[i++];
            j += c == 0; /* honor_labels: the scraped value wins */
        } else {
            out[n++] = tl[j++];
        }
    }
    return n;
}
