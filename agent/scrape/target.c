/*
 * target.c - what a scrape target is: its URL, its labels, its phase.
 *
 * Target labels are built the way Prometheus builds them for a static
 * target without relabeling: the group's labels, then job=<job_name> and
 * instance=<address> unless the group already set them. Labels starting
 * with "__" are meta labels: __scheme__ and __metrics_path__ change the URL
 * and all of them are dropped from the final set. Relabeling (next step)
 * will slot in between building this label set and deriving the URL, which
 * is why the URL is computed from the labels rather than from the config.
 *
 * The phase spreads scrapes over the interval: XXH3 of job and URL modulo
 * the interval gives a stable offset, so restarts keep the same cadence and
 * many targets do not all fire at once.
 */
#include <stdio.h>
#include <string.h>
#include <xxhash.h>

#include "scrape/scrape_int.h"
#include "vigil/alloc.h"

#define DEFAULT_INTERVAL_MS 30000
#define DEFAULT_TIMEOUT_MS  10000

static const char *find_label(const vg_label_t *l, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (strcmp(l[i].name, name) == 0) return l[i].value;
    return NULL;
}

/* job, instance and the group's labels; meta labels dropped. */
static vg_err_t build_labels(vg_scrape_target_t *t, const vg_scrape_config_t *sc,
                             const vg_static_group_t *g, const char *addr)
{
    size_t ng = g ? g->nlabels : 0, n = 0;
    t->labels = vg_arena_alloc(t->arena, (ng + 2) * sizeof *t->labels);
    if (!t->labels) return VG_ENOMEM;
    for (size_t i = 0; i < ng; i++) {
        const vg_label_t *l = &g->labels[i];
        if (strncmp(l->name, "__", 2) == 0 || !l->value || !*l->value) continue;
        t->labels[n++] = *l;
    }
    if (!find_label(t->labels, n, "job"))
        t->labels[n++] = (vg_label_t){"job", sc->job_name ? sc->job_name : ""};
    if (!find_label(t->labels, n, "instance")) t->labels[n++] = (vg_label_t){"instance", addr};
    t->nlabels = n;
    vg_labels_sort(t->labels, n);
    t->instance = find_label(t->labels, n, "instance");
    return VG_OK;
}

/* Append ?k=v&... with URL escaping. */
static vg_err_t append_params(vg_buf *u, const vg_scrape_config_t *sc)
{
    vg_err_t rc = VG_OK;
    for (size_t i = 0; i < sc->nparams && !rc; i++) {
        char *k = curl_easy_escape(NULL, sc->params[i].key, 0);
        char *v = curl_easy_escape(NULL, sc->params[i].value ? sc->params[i].value : "", 0);
        if (k && v)
            rc = vg_buf_printf(u, "%c%s=%s", i ? '&' : '?', k, v);
        else
            rc = VG_ENOMEM;
        curl_free(k);
        curl_free(v);
    }
    return rc;
}

static vg_err_t build_url(vg_scrape_target_t *t, const vg_scrape_config_t *sc,
                          const vg_static_group_t *g, const char *addr)
{
    const vg_label_t *gl = g ? g->labels : NULL;
    size_t ng = g ? g->nlabels : 0;
    const char *scheme = find_label(gl, ng, "__scheme__");
    const char *path = find_label(gl, ng, "__metrics_path__");
    if (!scheme || !*scheme) scheme = sc->scheme && *sc->scheme ? sc->scheme : "http";
    if (!path || !*path)
        path = sc->metrics_path && *sc->metrics_path ? sc->metrics_path : "/metrics";
    vg_buf u;
    vg_buf_init(&u, 64 * 1024);
    vg_err_t rc = vg_buf_printf(&u, "%s://%s%s%s", scheme, addr, path[0] == '/' ? "" : "/", path);
    if (!rc) rc = append_params(&u, sc);
    if (!rc) t->url = vg_arena_strndup(t->arena, u.data, u.len);
    if (!rc && !t->url) rc = VG_ENOMEM;
    vg_buf_free(&u);
    return rc;
}

static int addr_valid(const char *a)
{
    if (!a || !*a || strchr(a, '/') || strchr(a, '@') || strchr(a, '?') || strchr(a, '#')) return 0;
    for (const char *p = a; *p; p++)
        if ((unsigned char)*p <= ' ') return 0;
    return 1;
}

/* XXH3 of "job\xffurl": stable across restarts and agents. */
static uint64_t phase_hash(const char *job, const char *url)
{
    size_t nj = strlen(job), nu = strlen(url);
    char stack[512], *b = nj + nu + 1 <= sizeof stack ? stack : vg_malloc(nj + nu + 1);
    if (!b) return XXH3_64bits(url, nu);
    memcpy(b, job, nj);
    b[nj] = '\xff';
    memcpy(b + nj + 1, url, nu);
    uint64_t h = XXH3_64bits(b, nj + nu + 1);
    if (b != stack) vg_free(b);
    return h;
}

vg_err_t vg_scrape_target_init(vg_scrape_target_t *t, const vg_agent_config_t *cfg,
                               const vg_scrape_config_t *sc, const vg_static_group_t *g,
                               const char *addr, vg_error *err)
{
    const char *job = sc->job_name ? sc->job_name : "";
    if (!addr_valid(addr))
        return vg_error_set(err, VG_ECONFIG, "job %s: target \"%s\" is not a valid host:port", job,
                            addr ? addr : "");
    t->sc = sc;
    atomic_store(&t->health, -1);
    vg_buf_init(&t->body, 0);
    t->arena = vg_arena_new(4096);
    if (!t->arena) return vg_error_set(err, VG_ENOMEM, "out of memory");
    vg_err_t rc = build_labels(t, sc, g, addr);
    if (!rc) rc = build_url(t, sc, g, addr);
    if (!rc) rc = vg_scrape_cache_init(&t->cache);
    if (rc) return vg_error_set(err, rc, "job %s target %s: %s", job, addr, vg_strerror(rc));
    t->interval_ms = sc->interval_ms > 0                  ? sc->interval_ms
                     : cfg && cfg->scrape_interval_ms > 0 ? cfg->scrape_interval_ms
                                                          : DEFAULT_INTERVAL_MS;
    t->timeout_ms = sc->timeout_ms > 0                  ? sc->timeout_ms
                    : cfg && cfg->scrape_timeout_ms > 0 ? cfg->scrape_timeout_ms
                                                        : DEFAULT_TIMEOUT_MS;
    if (t->timeout_ms > t->interval_ms) t->timeout_ms = t->interval_ms;
    t->body_cap = sc->body_size_limit && sc->body_size_limit < VG_SCRAPE_DEFAULT_BODY_CAP
                      ? (size_t)sc->body_size_limit
                      : VG_SCRAPE_DEFAULT_BODY_CAP;
    t->body.max = t->body_cap;
    t->offset_ms = phase_hash(job, t->url) % (uint64_t)t->interval_ms;
    return VG_OK;
}

void vg_scrape_target_destroy(vg_scrape_target_t *t)
{
    if (!t) return;
    vg_scrape_cache_destroy(&t->cache);
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
