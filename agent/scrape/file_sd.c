/*
 * file_sd.c - file-based service discovery (Prometheus file_sd_configs).
 *
 * Why this shape: discovery runs on the scrape thread (the loop polls the
 * inotify fd beside curl's sockets and calls vg_file_sd_refresh when it
 * fires or refresh_interval passes), so there is no locking between
 * discovery and scraping, and a refresh is cheap when nothing changed: one
 * glob and one stat per file, and a file is only read again when its
 * device, inode, size or mtime differ. Each file's groups live in the
 * file's own arena, so replacing one file's groups frees exactly its
 * memory. A file that cannot be read or parsed keeps its last good groups
 * (Prometheus does the same) and is counted; it is retried when it changes.
 *
 * JSON goes through jansson, YAML through the config document layer (which
 * caps size, depth and alias expansion). Both formats refuse unknown keys
 * and invalid label names, with positions where the format has them.
 */
#include "scrape/file_sd.h"

#include <errno.h>
#include <glob.h>
#include <jansson.h>
#include <libgen.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/inotify.h>
#include <sys/stat.h>

#include "vigil/alloc.h"
#include "vigil/config.h"
#include "vigil/log.h"

#define META_FILEPATH "__meta_filepath"

typedef struct sd_file {
    char *path;
    struct stat st; /* at the last read attempt */
    vg_arena_t *arena;
    vg_static_group_t *groups;
    size_t n;
    int seen;
} sd_file;

struct vg_file_sd {
    const vg_scrape_config_t *sc;
    sd_file *files; /* sorted by path */
    size_t nfiles, cap;
    vg_static_group_t *all;
    size_t nall;
    int64_t interval_ms;
    vg_metric_t *errors;
};

/* ------------------------------------------------------------ parsing */

/* Room for nt targets and nl labels (+ __meta_filepath). */
static int group_alloc(vg_arena_t *a, vg_static_group_t *g, size_t nt, size_t nl)
{
    memset(g, 0, sizeof *g);
    g->targets = vg_arena_alloc(a, (nt ? nt : 1) * sizeof *g->targets);
    g->labels = vg_arena_alloc(a, (nl + 1) * sizeof *g->labels);
    return g->targets && g->labels;
}

/* Add a label, checking its name; returns an error message or NULL. */
static const char *group_label(vg_arena_t *a, vg_static_group_t *g, const char *name,
                               const char *value)
{
    if (!vg_label_name_valid(name, strlen(name))) return "is not a valid label name";
    for (size_t i = 0; i < g->nlabels; i++)
        if (!strcmp(g->labels[i].name, name)) return "is a duplicate label name";
    g->labels[g->nlabels].name = vg_arena_strdup(a, name);
    g->labels[g->nlabels].value = vg_arena_strdup(a, value);
    if (!g->labels[g->nlabels].name || !g->labels[g->nlabels].value) return "out of memory";
    g->nlabels++;
    return NULL;
}

/* __meta_filepath (overriding one from the file), then sort. */
static void group_finish(vg_static_group_t *g, const char *path)
{
    size_t i = 0;
    while (i < g->nlabels && strcmp(g->labels[i].name, META_FILEPATH)) i++;
    g->labels[i] = (vg_label_t){META_FILEPATH, path};
    if (i == g->nlabels) g->nlabels++;
    vg_labels_sort(g->labels, g->nlabels);
}

static vg_err_t json_group(const char *path, json_t *o, size_t idx, vg_arena_t *a,
                           vg_static_group_t *g, vg_error *err)
{
    const char *key, *bad = NULL;
    json_t *v, *tg = NULL, *lb = NULL;
    if (!json_is_object(o))
        return vg_error_set(err, VG_EPARSE, "%s: group %zu: expected an object", path, idx);
    json_object_foreach(o, key, v)
    {
        if (!strcmp(key, "targets"))
            tg = v;
        else if (!strcmp(key, "labels"))
            lb = v;
        else
            return vg_error_set(err, VG_EPARSE, "%s: group %zu: unknown field \"%.100s\"", path,
                                idx, key);
    }
    if ((tg && !json_is_array(tg) && !json_is_null(tg)) ||
        (lb && !json_is_object(lb) && !json_is_null(lb)))
        return vg_error_set(err, VG_EPARSE,
                            "%s: group %zu: targets must be a list and labels an object", path,
                            idx);
    if (!group_alloc(a, g, json_array_size(tg), json_object_size(lb))) goto nomem;
    for (size_t i = 0; i < json_array_size(tg); i++) {
        const char *t = json_string_value(json_array_get(tg, i));
        if (!t)
            return vg_error_set(err, VG_EPARSE, "%s: group %zu: target %zu is not a string", path,
                                idx, i);
        if (!(g->targets[g->ntargets++] = vg_arena_strdup(a, t))) goto nomem;
    }
    json_object_foreach(lb, key, v)
    {
        if (!json_is_string(v))
            return vg_error_set(err, VG_EPARSE, "%s: group %zu: label \"%.100s\" is not a string",
                                path, idx, key);
        if ((bad = group_label(a, g, key, json_string_value(v))))
            return vg_error_set(err, VG_EPARSE, "%s: group %zu: \"%.100s\" %s", path, idx, key,
                                bad);
    }
    return VG_OK;
nomem:
    return vg_error_set(err, VG_ENOMEM, "out of memory");
}

static vg_err_t parse_json(const char *path, const char *text, size_t len, vg_arena_t *a,
                           vg_static_group_t **groups, size_t *n, vg_error *err)
{
    json_error_t je;
    json_t *root = json_loadb(text, len, JSON_DECODE_ANY, &je);
    vg_err_t rc = VG_OK;
    if (!root)
        return vg_error_set(err, VG_EPARSE, "%s:%d:%d: %s", path, je.line, je.column, je.text);
    if (!json_is_array(root)) {
        rc = vg_error_set(err, VG_EPARSE, "%s: expected a list of target groups", path);
        goto out;
    }
    size_t ng = json_array_size(root);
    *groups = vg_arena_alloc(a, (ng ? ng : 1) * sizeof **groups);
    if (!*groups) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ng && !rc; i++) {
        rc = json_group(path, json_array_get(root, i), i, a, &(*groups)[i], err);
        if (!rc) group_finish(&(*groups)[i], path);
    }
    if (!rc) *n = ng;
out:
    json_decref(root);
    return rc;
}

static vg_err_t yaml_err(const char *path, const vg_cfg_node_t *at, vg_error *err, const char *what)
{
    return vg_error_set(err, VG_EPARSE, "%s:%d:%d: %s", path, vg_cfg_node_line(at),
                        vg_cfg_node_col(at), what);
}

static vg_err_t yaml_group(const char *path, const vg_cfg_node_t *m, vg_arena_t *a,
                           vg_static_group_t *g, vg_error *err)
{
    if (vg_cfg_node_kind(m) != VG_CFG_MAP) return yaml_err(path, m, err, "expected a target group");
    const vg_cfg_node_t *tg = NULL, *lb = NULL;
    for (size_t i = 0; i < vg_cfg_node_len(m); i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(m, i);
        if (!strcmp(vg_cfg_node_text(k), "targets"))
            tg = vg_cfg_map_value(m, i);
        else if (!strcmp(vg_cfg_node_text(k), "labels"))
            lb = vg_cfg_map_value(m, i);
        else
            return yaml_err(path, k, err, "unknown field in a target group");
    }
    if ((vg_cfg_node_kind(tg) != VG_CFG_SEQ && vg_cfg_node_kind(tg) != VG_CFG_NULL) ||
        (vg_cfg_node_kind(lb) != VG_CFG_MAP && vg_cfg_node_kind(lb) != VG_CFG_NULL))
        return yaml_err(path, m, err, "targets must be a list and labels a map");
    if (!group_alloc(a, g, vg_cfg_node_len(tg), vg_cfg_node_len(lb)))
        return vg_error_set(err, VG_ENOMEM, "out of memory");
    for (size_t i = 0; i < vg_cfg_node_len(tg); i++) {
        const char *t = vg_cfg_node_text(vg_cfg_seq_item(tg, i));
        if (!t) return yaml_err(path, vg_cfg_seq_item(tg, i), err, "a target must be a string");
        if (!(g->targets[g->ntargets++] = vg_arena_strdup(a, t)))
            return vg_error_set(err, VG_ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < vg_cfg_node_len(lb); i++) {
        const vg_cfg_node_t *k = vg_cfg_map_key(lb, i), *v = vg_cfg_map_value(lb, i);
        const char *val = vg_cfg_node_kind(v) == VG_CFG_NULL ? "" : vg_cfg_node_text(v), *bad;
        if (!val) return yaml_err(path, v, err, "a label value must be a string");
        if ((bad = group_label(a, g, vg_cfg_node_text(k), val))) return yaml_err(path, k, err, bad);
    }
    return VG_OK;
}

static vg_err_t parse_yaml(const char *path, const char *text, size_t len, vg_arena_t *a,
                           vg_static_group_t **groups, size_t *n, vg_error *err)
{
    vg_cfg_doc_t *doc = NULL;
    vg_err_t rc = vg_cfg_doc_parse(path, text, len, &doc, err);
    if (rc) return rc == VG_ENOMEM ? rc : VG_EPARSE;
    const vg_cfg_node_t *root = vg_cfg_doc_root(doc);
    size_t ng = vg_cfg_node_len(root);
    if (vg_cfg_node_kind(root) != VG_CFG_SEQ && vg_cfg_node_kind(root) != VG_CFG_NULL) {
        rc = yaml_err(path, root, err, "expected a list of target groups");
        goto out;
    }
    if (!(*groups = vg_arena_alloc(a, (ng ? ng : 1) * sizeof **groups))) {
        rc = vg_error_set(err, VG_ENOMEM, "out of memory");
        goto out;
    }
    for (size_t i = 0; i < ng && !rc; i++) {
        rc = yaml_group(path, vg_cfg_seq_item(root, i), a, &(*groups)[i], err);
        if (!rc) group_finish(&(*groups)[i], path);
    }
    if (!rc) *n = ng;
out:
    vg_cfg_doc_free(doc);
    return rc;
}

vg_err_t vg_file_sd_parse(const char *path, const char *text, size_t len, int yaml, vg_arena_t *a,
                          vg_static_group_t **groups, size_t *n, vg_error *err)
{
    *groups = NULL;
    *n = 0;
    if (len > VG_FILE_SD_MAX_BYTES)
        return vg_error_set(err, VG_ETOOLARGE, "%s: larger than %u bytes", path,
                            VG_FILE_SD_MAX_BYTES);
    const char *p = vg_arena_strdup(a, path);
    if (!p) return vg_error_set(err, VG_ENOMEM, "out of memory");
    return yaml ? parse_yaml(p, text, len, a, groups, n, err)
                : parse_json(p, text, len, a, groups, n, err);
}

/* ------------------------------------------------------------ tracking */

static int is_yaml(const char *path)
{
    const char *dot = strrchr(path, '.');
    return dot && (!strcasecmp(dot, ".yml") || !strcasecmp(dot, ".yaml"));
}

static vg_err_t read_file(const char *path, char **out, size_t *len, vg_error *err)
{
    FILE *f = fopen(path, "rb");
    if (!f) return vg_error_set(err, VG_EIO, "%s: cannot open: %s", path, strerror(errno));
    char *buf = vg_malloc(VG_FILE_SD_MAX_BYTES + 1);
    size_t n = buf ? fread(buf, 1, VG_FILE_SD_MAX_BYTES + 1, f) : 0;
    vg_err_t rc = !buf        ? vg_error_set(err, VG_ENOMEM, "out of memory")
                  : ferror(f) ? vg_error_set(err, VG_EIO, "%s: read failed", path)
                  : n > VG_FILE_SD_MAX_BYTES
                      ? vg_error_set(err, VG_ETOOLARGE, "%s: larger than %u bytes", path,
                                     VG_FILE_SD_MAX_BYTES)
                      : VG_OK;
    fclose(f);
    if (rc) {
        vg_free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return VG_OK;
}

/* Read and parse one file into fresh groups; keep the old ones on failure. */
static int load_file(vg_file_sd_t *f, sd_file *sf)
{
    vg_error err = {0};
    char *text = NULL;
    size_t len = 0, n = 0;
    vg_static_group_t *groups = NULL;
    vg_arena_t *a = vg_arena_new(4096);
    vg_err_t rc =
        a ? read_file(sf->path, &text, &len, &err) : vg_error_set(&err, VG_ENOMEM, "out of memory");
    if (!rc) rc = vg_file_sd_parse(sf->path, text, len, is_yaml(sf->path), a, &groups, &n, &err);
    vg_free(text);
    if (rc) {
        char q[600];
        vg_log_warn("file_sd", "cannot read target groups; keeping the last good ones",
                    "job=%s err=%s", f->sc->job_name, vg_logq(q, sizeof q, vg_error_msg(&err, rc)));
        vg_metric_inc(f->errors);
        vg_arena_free(a);
        return 0;
    }
    vg_arena_free(sf->arena);
    sf->arena = a;
    sf->groups = groups;
    sf->n = n;
    return 1;
}

static int same_stat(const struct stat *a, const struct stat *b)
{
    return a->st_dev == b->st_dev && a->st_ino == b->st_ino && a->st_size == b->st_size &&
           a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* The tracked file for path, added (sorted) when new; NULL on ENOMEM. */
static sd_file *file_for(vg_file_sd_t *f, const char *path, int *fresh)
{
    size_t i = 0;
    while (i < f->nfiles && strcmp(f->files[i].path, path) < 0) i++;
    *fresh = 0;
    if (i < f->nfiles && !strcmp(f->files[i].path, path)) return &f->files[i];
    if (f->nfiles == f->cap) {
        size_t nc = f->cap ? f->cap * 2 : 8;
        sd_file *nf = vg_realloc(f->files, nc * sizeof *nf);
        if (!nf) return NULL;
        f->files = nf;
        f->cap = nc;
    }
    char *p = vg_strdup(path);
    if (!p) return NULL;
    memmove(&f->files[i + 1], &f->files[i], (f->nfiles - i) * sizeof *f->files);
    memset(&f->files[i], 0, sizeof *f->files);
    f->files[i].path = p;
    f->nfiles++;
    *fresh = 1;
    return &f->files[i];
}

/* Stat path and re-read it when it changed; returns 1 when its groups changed. */
static int check_path(vg_file_sd_t *f, const char *path)
{
    struct stat st;
    int fresh;
    if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) return 0;
    sd_file *sf = file_for(f, path, &fresh);
    if (!sf) return 0;
    sf->seen = 1;
    if (!fresh && same_stat(&sf->st, &st)) return 0;
    sf->st = st;
    return load_file(f, sf);
}

static int drop_unseen(vg_file_sd_t *f)
{
    size_t o = 0;
    int changed = 0;
    for (size_t i = 0; i < f->nfiles; i++) {
        if (f->files[i].seen) {
            f->files[o++] = f->files[i];
            continue;
        }
        changed |= f->files[i].n > 0;
        vg_arena_free(f->files[i].arena);
        vg_free(f->files[i].path);
    }
    f->nfiles = o;
    return changed;
}

static void rebuild_all(vg_file_sd_t *f)
{
    size_t n = 0;
    for (size_t i = 0; i < f->nfiles; i++) n += f->files[i].n;
    vg_static_group_t *all = vg_realloc(f->all, (n ? n : 1) * sizeof *all);
    if (!all) { /* the old list may point into freed arenas: publish nothing */
        f->nall = 0;
        return;
    }
    f->all = all;
    f->nall = 0;
    for (size_t i = 0; i < f->nfiles; i++)
        for (size_t j = 0; j < f->files[i].n; j++) f->all[f->nall++] = f->files[i].groups[j];
}

int vg_file_sd_refresh(vg_file_sd_t *f)
{
    int changed = 0;
    if (!f) return 0;
    for (size_t i = 0; i < f->nfiles; i++) f->files[i].seen = 0;
    for (size_t c = 0; c < f->sc->nfile_sd; c++) {
        const vg_file_sd_config_t *fc = &f->sc->file_sd[c];
        for (size_t p = 0; p < fc->nfiles; p++) {
            glob_t g;
            memset(&g, 0, sizeof g);
            if (glob(fc->files[p], GLOB_NOSORT, NULL, &g) == 0)
                for (size_t k = 0; k < g.gl_pathc; k++) changed |= check_path(f, g.gl_pathv[k]);
            globfree(&g);
        }
    }
    changed |= drop_unseen(f);
    if (changed) rebuild_all(f);
    return changed;
}

/* Watch the folder of every glob for files appearing, changing, going. */
static void add_watches(int fd, const vg_scrape_config_t *sc)
{
    /* no IN_MODIFY: a half-written file would be read and counted as broken */
    const uint32_t mask =
        IN_CREATE | IN_DELETE | IN_MOVED_TO | IN_MOVED_FROM | IN_CLOSE_WRITE | IN_ATTRIB;
    for (size_t c = 0; fd >= 0 && c < sc->nfile_sd; c++)
        for (size_t p = 0; p < sc->file_sd[c].nfiles; p++) {
            char *dup = vg_strdup(sc->file_sd[c].files[p]);
            if (!dup) continue;
            if (inotify_add_watch(fd, dirname(dup), mask) < 0)
                vg_log_debug("file_sd", "no inotify watch; relying on refresh_interval",
                             "dir=%s errno=%d", dup, errno);
            vg_free(dup);
        }
}

vg_err_t vg_file_sd_new(const vg_scrape_config_t *sc, int inotify_fd, vg_metric_t *errors,
                        vg_file_sd_t **out, vg_error *err)
{
    vg_file_sd_t *f = vg_calloc(1, sizeof *f);
    *out = NULL;
    if (!f) return vg_error_set(err, VG_ENOMEM, "out of memory");
    f->sc = sc;
    f->errors = errors;
    f->interval_ms = 5 * 60 * 1000;
    for (size_t c = 0; c < sc->nfile_sd; c++)
        if (sc->file_sd[c].refresh_interval_ms > 0 &&
            (c == 0 || sc->file_sd[c].refresh_interval_ms < f->interval_ms))
            f->interval_ms = sc->file_sd[c].refresh_interval_ms;
    add_watches(inotify_fd, sc);
    *out = f;
    return VG_OK;
}

void vg_file_sd_free(vg_file_sd_t *f)
{
    if (!f) return;
    for (size_t i = 0; i < f->nfiles; i++) {
        vg_arena_free(f->files[i].arena);
        vg_free(f->files[i].path);
    }
    vg_free(f->files);
    vg_free(f->all);
    vg_free(f);
}

const vg_static_group_t *vg_file_sd_groups(const vg_file_sd_t *f, size_t *n)
{
    *n = f ? f->nall : 0;
    return f ? f->all : NULL;
}

int64_t vg_file_sd_interval(const vg_file_sd_t *f)
{
    return f ? f->interval_ms : 0;
}
