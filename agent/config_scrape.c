/*
 * config_scrape.c (agent) - Prometheus scrape_config parts beyond table rows.
 *
 * The schema tables stay declarative (they also generate the docs); what
 * needs code lives here, next to the tables it belongs to:
 *   - relabel rules decode as plain tables into vg_relabel_rule_t, then the
 *     whole list is compiled by vg_relabel_new at load, so an invalid regex
 *     or a rule Prometheus would refuse fails the load with file:line:col of
 *     the offending key (vg_relabel_new says which rule and which key);
 *   - file_sd_configs paths must look like Prometheus's (a glob ending in
 *     .json/.yml/.yaml) and are made absolute against the config's folder,
 *     as Prometheus's SetDirectory does, so a restart from another working
 *     directory finds the same files;
 *   - the HTTP client checks are Prometheus's HTTPClientConfig.Validate, with
 *     its messages, including the legacy bearer_token keys;
 *   - global keys that only matter to a Prometheus server are accepted with
 *     a debug line, so a pasted prometheus.yml loads unchanged.
 */
#include "config_scrape.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "vigil/alloc.h"
#include "vigil/log.h"

/* ---- relabel rules (the table is vg_relabel_cfg_schema, common/relabel_schema.c) ---- */

/* Compile the rules of key ("relabel_configs") into *out; errors point at
 * the key vg_relabel_new names, or at the rule when that key is absent. */
static vg_err_t compile_rules(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, const char *key,
                              const vg_relabel_rule_t *rules, size_t n, vg_relabel_t **out)
{
    vg_agent_config_t *c = ctx->user;
    vg_relabel_where_t w = {0, NULL};
    vg_error e = {0};
    *out = NULL;
    if (!n) return VG_OK;
    vg_relabel_t **grown = vg_realloc(c->compiled, (c->ncompiled + 1) * sizeof *grown);
    if (!grown) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
    c->compiled = grown;
    vg_err_t rc = vg_relabel_new(rules, n, out, &w, &e);
    if (rc == VG_ENOMEM) return vg_error_set(ctx->err, rc, "out of memory");
    if (!rc) {
        c->compiled[c->ncompiled++] = *out;
        return VG_OK;
    }
    const vg_cfg_node_t *item = vg_cfg_seq_item(vg_cfg_map_get(node, key), w.index);
    const vg_cfg_node_t *at = w.field ? vg_cfg_map_get(item, w.field) : NULL;
    return vg_cfg_errorf(ctx, at ? at : item, "%s.%s[%zu]: %s", ctx->path, key, w.index, e.msg);
}

/* ---- file_sd_configs ---- */

#define FS(f) offsetof(vg_file_sd_config_t, f)
const vg_cfg_field_t vg_agent_cfg_file_sd_schema[] = {
    {.key = "files",
     .type = VG_CFG_T_STRINGS,
     .offset = FS(files),
     .count_offset = FS(nfiles),
     .flags = VG_CFG_REQUIRED,
     .doc = "files to read target groups from; the last path element may hold one `*`"},
    {.key = "refresh_interval",
     .type = VG_CFG_T_DURATION,
     .offset = FS(refresh_interval_ms),
     .def = "5m",
     .min = "1ms",
     .doc = "re-check the files this often (changes are also seen at once through inotify)"},
    {0},
};
#undef FS

/* Prometheus's ^[^*]*(\*[^/]*)?\.(json|yml|yaml|JSON|YML|YAML)$ */
static int sd_path_valid(const char *p)
{
    const char *star = strchr(p, '*'), *dot = strrchr(p, '.');
    if (star && (strchr(star + 1, '*') || strchr(star + 1, '/'))) return 0;
    if (!dot || (star && dot < star)) return 0;
    static const char *const ext[] = {"json", "yml", "yaml", "JSON", "YML", "YAML"};
    for (size_t i = 0; i < sizeof ext / sizeof *ext; i++)
        if (!strcmp(dot + 1, ext[i])) return 1;
    return 0;
}

/* Directory part of the config file's name with a trailing '/', or "" . */
static size_t config_dir_len(const vg_cfg_ctx_t *ctx)
{
    const char *name = vg_cfg_doc_name(ctx->doc), *slash = name ? strrchr(name, '/') : NULL;
    return slash ? (size_t)(slash - name) + 1 : 0;
}

vg_err_t vg_agent_cfg_check_file_sd(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *obj)
{
    vg_file_sd_config_t *f = obj;
    const vg_cfg_node_t *fn = vg_cfg_map_get(node, "files");
    if (!f->nfiles)
        return vg_cfg_errorf(ctx, fn ? fn : node,
                             "%s: file service discovery config must contain at least one path "
                             "name",
                             ctx->path);
    size_t dl = config_dir_len(ctx);
    for (size_t i = 0; i < f->nfiles; i++) {
        if (!sd_path_valid(f->files[i]))
            return vg_cfg_errorf(ctx, vg_cfg_seq_item(fn, i),
                                 "%s.files[%zu]: path name \"%.200s\" is not valid for file "
                                 "discovery",
                                 ctx->path, i, f->files[i]);
        if (f->files[i][0] == '/' || !dl) continue;
        const char *abs =
            vg_arena_sprintf(ctx->arena, "%.*s%s", (int)dl, vg_cfg_doc_name(ctx->doc), f->files[i]);
        if (!abs) return vg_error_set(ctx->err, VG_ENOMEM, "out of memory");
        f->files[i] = abs;
    }
    return VG_OK;
}

/* ---- HTTP client: basic_auth, authorization, tls_config ---- */

#define AU(f) offsetof(vg_scrape_auth_t, f)
const vg_cfg_field_t vg_agent_cfg_basic_auth_schema[] = {
    {.key = "username", .type = VG_CFG_T_STRING, .offset = AU(username), .doc = "user name"},
    {.key = "password",
     .type = VG_CFG_T_STRING,
     .offset = AU(password),
     .doc = "password (never logged); or use password_file"},
    {.key = "password_file",
     .type = VG_CFG_T_STRING,
     .offset = AU(password_file),
     .doc = "file holding the password, read at each scrape"},
    {0},
};

const vg_cfg_field_t vg_agent_cfg_authorization_schema[] = {
    {.key = "type",
     .type = VG_CFG_T_STRING,
     .offset = AU(auth_type),
     .def = "Bearer",
     .doc = "scheme of the Authorization header"},
    {.key = "credentials",
     .type = VG_CFG_T_STRING,
     .offset = AU(credentials),
     .doc = "credentials (never logged); or use credentials_file"},
    {.key = "credentials_file",
     .type = VG_CFG_T_STRING,
     .offset = AU(credentials_file),
     .doc = "file holding the credentials, read at each scrape"},
    {0},
};

const vg_cfg_field_t vg_agent_cfg_tls_schema[] = {
    {.key = "ca_file",
     .type = VG_CFG_T_STRING,
     .offset = AU(ca_file),
     .doc = "CA certificates to verify the target with"},
    {.key = "cert_file",
     .type = VG_CFG_T_STRING,
     .offset = AU(cert_file),
     .doc = "client certificate"},
    {.key = "key_file", .type = VG_CFG_T_STRING, .offset = AU(key_file), .doc = "client key"},
    {.key = "server_name",
     .type = VG_CFG_T_STRING,
     .offset = AU(server_name),
     .doc = "name sent as SNI and checked against the certificate instead of the target host"},
    {.key = "insecure_skip_verify",
     .type = VG_CFG_T_BOOL,
     .offset = AU(insecure_skip_verify),
     .def = "false",
     .doc = "do not verify the target's certificate"},
    {0},
};
#undef AU

static int set(const char *s)
{
    return s && *s;
}

/* Prometheus's HTTPClientConfig.Validate, minus oauth2 and *_ref. */
static const char *auth_problem(const vg_cfg_node_t *node, vg_scrape_auth_t *a, const char **key)
{
    int bearer = set(a->bearer_token) || set(a->bearer_token_file);
    int authz = !vg_cfg_node_empty(vg_cfg_map_get(node, "authorization"));
    a->basic = vg_cfg_map_get(node, "basic_auth") != NULL;
    *key = "bearer_token";
    if (set(a->bearer_token) && set(a->bearer_token_file))
        return "at most one of bearer_token & bearer_token_file must be configured";
    if (a->basic && bearer)
        return "at most one of basic_auth, oauth2, bearer_token & bearer_token_file must be "
               "configured";
    *key = "basic_auth";
    if (a->basic && set(a->password) && set(a->password_file))
        return "at most one of basic_auth password, password_file & password_ref must be "
               "configured";
    *key = "authorization";
    if (authz && bearer)
        return "authorization is not compatible with bearer_token & bearer_token_file";
    if (authz && set(a->credentials) && set(a->credentials_file))
        return "at most one of authorization credentials & credentials_file must be configured";
    if (authz && !strcasecmp(a->auth_type, "basic"))
        return "authorization type cannot be set to \"basic\", use \"basic_auth\" instead";
    if (authz && a->basic)
        return "at most one of basic_auth, oauth2 & authorization must be configured";
    *key = "tls_config";
    if (set(a->cert_file) && !set(a->key_file))
        return "exactly one of key or key_file must be configured when a client certificate is "
               "configured";
    if (set(a->key_file) && !set(a->cert_file))
        return "exactly one of cert or cert_file must be configured when a client key is "
               "configured";
    return NULL;
}

static vg_err_t check_auth(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, vg_scrape_auth_t *a)
{
    const char *key, *why = auth_problem(node, a, &key);
    if (why) {
        const vg_cfg_node_t *at = vg_cfg_map_get(node, key);
        return vg_cfg_errorf(ctx, at ? at : node, "%s: %s", ctx->path, why);
    }
    if (!a->auth_type || !*a->auth_type) a->auth_type = "Bearer";
    if (set(a->bearer_token)) a->credentials = a->bearer_token; /* Prometheus folds them in */
    if (set(a->bearer_token_file)) a->credentials_file = a->bearer_token_file;
    return VG_OK;
}

/* ---- global ---- */

vg_err_t vg_agent_cfg_ignored(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node, void *field, void *obj)
{
    if (node)
        vg_log_debug("config", "Prometheus key ignored by the agent", "key=%s line=%d", ctx->path,
                     vg_cfg_node_line(node));
    return VG_OK;
}

void vg_agent_cfg_inherit_limits(const vg_agent_config_t *c, const vg_cfg_node_t *node,
                                 vg_scrape_config_t *sc)
{
    if (!vg_cfg_map_get(node, "sample_limit")) sc->sample_limit = c->global_sample_limit;
    if (!vg_cfg_map_get(node, "label_limit")) sc->label_limit = c->global_label_limit;
    if (!vg_cfg_map_get(node, "body_size_limit")) sc->body_size_limit = c->global_body_size_limit;
}

vg_err_t vg_agent_cfg_check_scrape(vg_cfg_ctx_t *ctx, const vg_cfg_node_t *node,
                                   vg_scrape_config_t *sc)
{
    vg_err_t rc = check_auth(ctx, node, &sc->auth);
    if (!rc)
        rc = compile_rules(ctx, node, "relabel_configs", sc->relabel_rules, sc->nrelabel_rules,
                           &sc->relabel);
    if (!rc)
        rc = compile_rules(ctx, node, "metric_relabel_configs", sc->metric_relabel_rules,
                           sc->nmetric_relabel_rules, &sc->metric_relabel);
    return rc;
}
